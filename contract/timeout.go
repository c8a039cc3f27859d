package contract

import (
	"fmt"
	"time"
)

// ParseUpstreamTimeout reads an AnnotationUpstreamTimeout value: a Go duration ("90s", "15m",
// "1h30m"), not negative; "0" means no timeout. It returns the value as the sidecar's flag takes
// it.
func ParseUpstreamTimeout(s string) (string, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a duration such as 90s or 15m", s)
	case d < 0:
		return "", fmt.Errorf("%q is negative", s)
	}
	return d.String(), nil
}
