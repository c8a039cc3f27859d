package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of serve): placeholder until the real command lands.
func newServeCommand() *cobra.Command {
	return &cobra.Command{
		Use: "serve",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("serve is not implemented yet")
		},
	}
}
