package inject

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
)

func TestInjectorFlagsMatchTheDefaults(t *testing.T) {
	// Without flags, the commands inject exactly what inject.DefaultSettings describe.
	var flags Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	got, err := flags.Settings([]string{"cors-policy"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	if got.SidecarImage != want.SidecarImage || got.SidecarImagePullPolicy != "" || got.InboundPort != want.InboundPort || got.AdminPort != want.AdminPort ||
		!got.Requests.Cpu().Equal(*want.Requests.Cpu()) || !got.Requests.Memory().Equal(*want.Requests.Memory()) {
		t.Errorf("flag defaults %+v, inject defaults %+v", got, want)
	}
	for _, l := range []struct {
		name      string
		got, want corev1.ResourceList
	}{{"requests", got.Requests, want.Requests}, {"limits", got.Limits, want.Limits}} {
		if len(l.got) != len(l.want) {
			t.Errorf("%s: flags %v, defaults %v", l.name, l.got, l.want)
		}
		for r, q := range l.want {
			if g, ok := l.got[r]; !ok || !g.Equal(q) {
				t.Errorf("%s %s: flag default %v, inject default %v", l.name, r, l.got[r], q.String())
			}
		}
	}
	// "" leaves a limit out; a request above its limit is a usage error.
	if err := fs.Parse([]string{"--sidecar-cpu-limit="}); err != nil {
		t.Fatal(err)
	}
	if got, err := flags.Settings([]string{"cors-policy"}); err != nil || got.Limits.Cpu().Sign() != 0 || len(got.Limits) != 2 {
		t.Errorf("--sidecar-cpu-limit='': %v, limits %v", err, got.Limits)
	}
	if err := fs.Parse([]string{"--sidecar-memory-request=1Gi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.Settings([]string{"cors-policy"}); err == nil || !strings.Contains(err.Error(), "exceeds its limit") {
		t.Errorf("a request above its limit: %v", err)
	}
}
