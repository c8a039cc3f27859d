package cors

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// MaxMaxAge is the largest maxAge accepted: access-control-max-age is sent in whole seconds and
// the normalized form stores them as an int32 (intstr), so anything longer cannot be carried.
const MaxMaxAge = math.MaxInt32 * time.Second

const maxAgeForms = `want a Go duration ("24h", "90m", "1h30m"), whole days ("2d") or seconds (3600 or "3600")`

// ParseMaxAge parses a CORS maxAge: a Go duration ("24h", "90m", "1h30m"), whole days ("2d"),
// or a plain integer (a JSON number or a numeric string) meaning seconds.
//
// It accepts more than FSM's script, which only understands a single unit and turns everything
// else (such as "1h30m" or 3600) silently into "no max-age"; here anything that is not one of
// the forms above is an error instead. Negative values are errors. Since the header carries
// whole seconds, sub-second precision is truncated ("1500ms" is 1s, "500ms" is 0, i.e. no
// header). Values above MaxMaxAge are errors.
func ParseMaxAge(v intstr.IntOrString) (time.Duration, error) {
	d, problem := parseMaxAge(v)
	if problem != "" {
		if v.Type == intstr.Int {
			return 0, fmt.Errorf("invalid maxAge %d: %s", v.IntVal, problem)
		}
		return 0, fmt.Errorf("invalid maxAge %q: %s", v.StrVal, problem)
	}
	return d, nil
}

// parseMaxAge is ParseMaxAge with the problem as a bare phrase, for field errors that already
// show the path and the value.
func parseMaxAge(v intstr.IntOrString) (time.Duration, string) {
	switch v.Type {
	case intstr.Int:
		if v.IntVal < 0 {
			return 0, "must not be negative"
		}
		return time.Duration(v.IntVal) * time.Second, ""
	case intstr.String:
		return parseMaxAgeString(v.StrVal)
	default:
		return 0, fmt.Sprintf("unknown intstr type %d", v.Type)
	}
}

const daysAlone = `days must be a whole number on their own, as in "2d"; for other lengths use a Go duration such as "36h"`

const tooLarge = "is too large (at most 2147483647 seconds)"

func parseMaxAgeString(s string) (time.Duration, string) {
	switch {
	case s == "":
		return 0, "is empty; " + maxAgeForms
	case strings.HasPrefix(s, "-"):
		return 0, "must not be negative"
	case isDigits(s):
		return secondsOf(s, 1)
	case strings.HasSuffix(s, "d"):
		days := strings.TrimSuffix(s, "d")
		if !isDigits(days) {
			return 0, daysAlone
		}
		return secondsOf(days, 86400)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.Contains(s, "d") {
			return 0, daysAlone
		}
		return 0, maxAgeForms
	}
	if d < 0 {
		return 0, "must not be negative"
	}
	if d > MaxMaxAge {
		return 0, tooLarge
	}
	return d.Truncate(time.Second), ""
}

// secondsOf returns digits*unit seconds, refusing anything above MaxMaxAge.
func secondsOf(digits string, unit uint64) (time.Duration, string) {
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > math.MaxInt32/unit {
		return 0, tooLarge
	}
	return time.Duration(n*unit) * time.Second, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
