package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of inject): placeholder until the real command lands.
func newInjectCommand() *cobra.Command {
	return &cobra.Command{
		Use: "inject",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("inject is not implemented yet")
		},
	}
}
