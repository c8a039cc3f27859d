package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/cors-webhook/cors-webhook/contract"
)

// restrictedApp is the guide's pod as a tenant of a restricted namespace writes it: its own
// container passes Pod Security restricted, so what the injection adds is what is judged.
const restrictedApp = `
kind: Pod
apiVersion: v1
metadata: {generateName: pipy-ok-v1-7d9f-, namespace: pipy, labels: {app: pipy-ok, version: v1}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: pipy
    image: flomesh/pipy:latest
    ports: [{name: pipy, containerPort: 8080}]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}`

// podSecurity is what Pod Security admission (its own library, the latest policy version) says
// of pod at level: nil when it admits it.
func podSecurity(t *testing.T, level psapi.Level, pod *corev1.Pod) []string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := policy.AggregateCheckResults(ev.EvaluatePod(psapi.LevelVersion{Level: level, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return nil
	}
	return res.ForbiddenReasons
}

func withMode(t *testing.T, mode RedirectMode) *Injector {
	t.Helper()
	s := newInjector(t).Settings()
	s.RedirectMode = mode
	in, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestRedirectModes: the mode is a value of the injector's input. In init mode nothing changes:
// cors-init holds NET_ADMIN and namespaces enforcing baseline or restricted are skipped. In cni
// mode no container is added but the sidecar, nothing holds a capability, the pod carries the
// annotations cors-cni reads, it passes Pod Security restricted, and those namespaces are
// injected.
func TestRedirectModes(t *testing.T) {
	nsEnforcing := func(level string) string {
		if level == "" {
			return nsPipy
		}
		return nsPipy[:strings.LastIndex(nsPipy, "}}")] + ", pod-security.kubernetes.io/enforce: " + level + "}}"
	}
	for _, tc := range []struct {
		name, enforce string
		mode          RedirectMode
		want          Outcome
	}{
		{"init, no Pod Security label", "", RedirectInit, Injected},
		{"init, privileged", "privileged", RedirectInit, Injected},
		{"init, baseline", "baseline", RedirectInit, PodSecurity},
		{"init, restricted", "restricted", RedirectInit, PodSecurity},
		{"cni, no Pod Security label", "", RedirectCNI, Injected},
		{"cni, baseline", "baseline", RedirectCNI, Injected},
		{"cni, restricted", "restricted", RedirectCNI, Injected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := append([]string{nsEnforcing(tc.enforce)}, seed[:5]...)
			docs = append(docs, nsCurl, nsPlain)
			res := injectInto(t, withMode(t, tc.mode), pod(t, restrictedApp), docs...)
			if res.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s; reasons %q", res.Outcome, tc.want, res.Reasons)
			}
			if res.Outcome != Injected {
				return
			}
			got := res.InjectedPod()
			var names []string
			for _, c := range got.Spec.InitContainers {
				names = append(names, c.Name)
			}
			a := got.Annotations
			switch tc.mode {
			case RedirectInit:
				if strings.Join(names, ",") != contract.ContainerInit+","+contract.ContainerSidecar {
					t.Errorf("init containers %q, want cors-init and cors-sidecar", names)
				}
				if _, ok := a[contract.AnnotationRedirectMode]; ok {
					t.Errorf("init mode wrote %s", contract.AnnotationRedirectMode)
				}
				if p := got.Spec.InitContainers[1].StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != contract.StartupPath {
					t.Errorf("init mode sidecar startup probe %+v, want GET %s", p, contract.StartupPath)
				}
				if why := podSecurity(t, psapi.LevelRestricted, got); len(why) == 0 {
					t.Error("an init-mode pod passes restricted: the check below would prove nothing")
				}
			case RedirectCNI:
				if strings.Join(names, ",") != contract.ContainerSidecar {
					t.Errorf("init containers %q, want cors-sidecar alone", names)
				}
				if a[contract.AnnotationRedirectMode] != contract.RedirectModeCNI || a[contract.AnnotationProxyPort] != "15003" || a[contract.AnnotationRedirectPorts] != "8080" {
					t.Errorf("annotations %v, want redirect-mode cni, proxy-port 15003, redirect-ports 8080", a)
				}
				for _, cs := range [][]corev1.Container{got.Spec.InitContainers, got.Spec.Containers} {
					for _, c := range cs {
						if sc := c.SecurityContext; sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 ||
							!ptr.Deref(sc.RunAsNonRoot, false) && got.Spec.SecurityContext.RunAsNonRoot == nil {
							t.Errorf("container %s: securityContext %+v", c.Name, sc)
						}
					}
				}
				// The startup probe proves the redirect: a TCP connection to the redirected port.
				if p := got.Spec.InitContainers[0].StartupProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 8080 || p.HTTPGet != nil {
					t.Errorf("cni mode sidecar startup probe %+v, want a TCP connection to port 8080", p)
				}
				if why := podSecurity(t, psapi.LevelRestricted, got); len(why) > 0 {
					t.Errorf("the cni-mode pod fails Pod Security restricted: %q", why)
				}
			}
		})
	}
}

func TestParseRedirectMode(t *testing.T) {
	for in, want := range map[string]RedirectMode{"": RedirectInit, "init": RedirectInit, "cni": RedirectCNI} {
		if got, err := ParseRedirectMode(in); err != nil || got != want {
			t.Errorf("ParseRedirectMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"CNI", "nftables", " init"} {
		if _, err := ParseRedirectMode(bad); err == nil {
			t.Errorf("ParseRedirectMode(%q) accepted", bad)
		}
	}
	s := DefaultSettings()
	s.RedirectMode, s.InitAsRoot = RedirectCNI, true
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "init redirect mode only") {
		t.Errorf("InitAsRoot in cni mode: %v", err)
	}
}
