package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
)

// rbacCheckRights pins what the chart's two service accounts may do, as the API server's
// authorizer says (`kubectl auth can-i --list`), in the release namespace and in any other:
// serve exactly reads what admission caches (plus Events, and in self-signed mode its one
// Secret), with no write verb on pods, workloads or Secrets; the controller exactly what its
// reconcilers and the built-in CA use. Both e2e runs of the processes use these accounts, so a
// right they lack fails those tests, and one they have in excess fails this one.
func rbacCheckRights(t *testing.T, c *framework.Cluster, ns, fullname, mode string) {
	t.Helper()
	selfSigned := mode == "self-signed"
	config := "[" + fullname + "]"
	secret := "[" + fullname + "-tls]"
	read := []string{"get", "list", "watch"}
	watch := []string{"list", "watch"}

	serve := rbacRights{}
	serve.add([]string{"plugins.plugin.flomesh.io", "pluginchains.plugin.flomesh.io", "pluginconfigs.plugin.flomesh.io", "namespaces", "services"}, "[]", read...)
	serve.add([]string{"events", "events.events.k8s.io"}, "[]", "create", "patch")
	serve.add([]string{"mutatingwebhookconfigurations.admissionregistration.k8s.io", "validatingwebhookconfigurations.admissionregistration.k8s.io"}, config, read...)

	controller := rbacRights{}
	controller.add([]string{"plugins.plugin.flomesh.io", "pluginchains.plugin.flomesh.io", "pluginconfigs.plugin.flomesh.io", "namespaces", "services", "replicasets.apps"}, "[]", watch...)
	controller.add([]string{"pluginchains.plugin.flomesh.io/status", "pluginconfigs.plugin.flomesh.io/status"}, "[]", "patch")
	controller.add([]string{"pods", "deployments.apps", "statefulsets.apps", "daemonsets.apps"}, "[]", "list", "watch", "patch")
	controller.add([]string{"events", "events.events.k8s.io"}, "[]", "create", "patch")
	if selfSigned {
		controller.add([]string{"mutatingwebhookconfigurations.admissionregistration.k8s.io", "validatingwebhookconfigurations.admissionregistration.k8s.io"}, config, "get", "list", "watch", "patch")
	} else {
		// Before a rollout: does the pod webhook answer? (its address and caBundle)
		controller.add([]string{"mutatingwebhookconfigurations.admissionregistration.k8s.io"}, config, "get")
	}

	// Namespaced grants: only in the release namespace.
	serveHere, controllerHere := serve.clone(), controller.clone()
	controllerHere.add([]string{"leases.coordination.k8s.io"}, "[cors-webhook.cors-webhook.io]", "get", "update")
	controllerHere.add([]string{"leases.coordination.k8s.io"}, "[]", "create")
	if selfSigned {
		serveHere.add([]string{"secrets"}, secret, read...)
		controllerHere.add([]string{"secrets"}, secret, "get", "list", "watch", "update")
	}

	for _, tc := range []struct {
		sa, ns string
		want   rbacRights
	}{
		{fullname, ns, serveHere}, {fullname, "anywhere", serve},
		{fullname + "-controller", ns, controllerHere}, {fullname + "-controller", "anywhere", controller},
	} {
		got := rbacList(t, c, "system:serviceaccount:"+ns+":"+tc.sa, tc.ns)
		if missing, extra := tc.want.diff(got); len(missing)+len(extra) > 0 {
			t.Errorf("service account %s in namespace %s (%s mode):\n  missing: %v\n  not wanted: %v", tc.sa, tc.ns, mode, missing, extra)
		}
		if tc.sa == fullname {
			for r := range got {
				if res, _, verb := r.split(); rbacWrites(verb) && (res == "pods" || res == "secrets" || strings.HasSuffix(res, ".apps")) {
					t.Errorf("serve may %s %s", verb, res)
				}
			}
		}
	}
}

// rbacRights is a set of "resource names verb" rights, names as kubectl prints them ("[]",
// "[a]").
type rbacRights map[rbacRight]bool

type rbacRight string

func (r rbacRights) add(resources []string, names string, verbs ...string) {
	for _, res := range resources {
		for _, v := range verbs {
			r[rbacRight(res+" "+names+" "+v)] = true
		}
	}
}

func (r rbacRights) clone() rbacRights {
	out := rbacRights{}
	for k := range r {
		out[k] = true
	}
	return out
}

func (r rbacRights) diff(got rbacRights) (missing, extra []string) {
	for k := range r {
		if !got[k] {
			missing = append(missing, string(k))
		}
	}
	for k := range got {
		if !r[k] {
			extra = append(extra, string(k))
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

func (r rbacRight) split() (resource, names, verb string) {
	f := strings.Fields(string(r))
	return f[0], strings.Join(f[1:len(f)-1], " "), f[len(f)-1]
}

func rbacWrites(verb string) bool {
	return slices.Contains([]string{"create", "update", "patch", "delete", "deletecollection", "*"}, verb)
}

// Every authenticated user may review its own access and read ClusterTrustBundles (public CA
// certificates); that is the API server's default policy, not the chart's doing.
var rbacEveryone = []string{"selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
	"selfsubjectreviews.authentication.k8s.io", "clustertrustbundles.certificates.k8s.io"}

var rbacRow = regexp.MustCompile(`^(\S*)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+\[([^\]]*)\]$`)

// rbacList parses `kubectl auth can-i --list --as=user -n ns`: the resource rules (non-resource
// URLs are every user's discovery rights and are left out).
func rbacList(t *testing.T, c *framework.Cluster, user, ns string) rbacRights {
	t.Helper()
	res := c.Kubectl(t, "auth", "can-i", "--list", "--no-headers", "--as="+user, "-n", ns)
	if res.ExitCode != 0 {
		t.Fatalf("kubectl auth can-i --list --as=%s: exit %d\n%s", user, res.ExitCode, res.Output())
	}
	got := rbacRights{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		line = strings.TrimRight(line, " \t")
		m := rbacRow.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("cannot parse the can-i --list line %q", line)
		}
		resource, names, verbs := m[1], m[3], strings.Fields(m[4])
		if resource == "" || slices.Contains(rbacEveryone, resource) {
			continue
		}
		got.add([]string{resource}, names, verbs...)
	}
	if len(got) == 0 {
		t.Fatalf("no rights parsed for %s:\n%s", user, res.Stdout)
	}
	t.Logf("%s in %s: %d rights", user, ns, len(got))
	return got
}
