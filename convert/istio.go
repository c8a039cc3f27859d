package convert

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// fromVirtualService imports the corsPolicy of every http route. Envoy, which enforces it, matches
// a StringMatch regex against the whole Origin (RE2 full match), treats an entry that matches
// "*" as "any origin", and echoes the Origin in access-control-allow-origin.
func fromVirtualService(obj *unstructured.Unstructured) *source {
	s := newSource(obj)
	ns := namespaceOf(obj)
	// Hosts that name a Service of the mesh are where the sidecar runs anyway; others (public
	// names behind a gateway) are scoping the sidecar cannot keep.
	var hosts []string
	vsHosts, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "hosts")
	for _, h := range vsHosts {
		if _, isService := istioService(h, ns); !isService {
			hosts = append(hosts, h)
		}
	}
	routes, _, _ := unstructured.NestedSlice(obj.Object, "spec", "http")
	var paths []string
	for i, r := range routes {
		route, _ := r.(map[string]any)
		cp, ok, _ := unstructured.NestedMap(route, "corsPolicy")
		if !ok {
			continue
		}
		where := fmt.Sprintf("http[%d]", i)
		if name, _, _ := unstructured.NestedString(route, "name"); name != "" {
			where = fmt.Sprintf("http[%d] (%s)", i, name)
		}
		var services []serviceRef
		dests, _, _ := unstructured.NestedSlice(route, "route")
		for _, d := range dests {
			dest, _ := d.(map[string]any)
			host, _, _ := unstructured.NestedString(dest, "destination", "host")
			svc, ok := istioService(host, ns)
			if !ok {
				s.lost("%s: destination %q is not a Service of this cluster (a ServiceEntry or external host); the sidecar runs in pods behind Services", where, host)
				continue
			}
			services = append(services, svc)
		}
		matches, _, _ := unstructured.NestedSlice(route, "match")
		for _, m := range matches {
			mm, _ := m.(map[string]any)
			for _, kind := range []string{"exact", "prefix", "regex"} {
				if v, ok, _ := unstructured.NestedString(mm, "uri", kind); ok && !(kind == "prefix" && v == "/") {
					paths = append(paths, fmt.Sprintf("%s uri %s %q", where, kind, v))
				}
			}
		}
		if cfg, ok := istioCORS(s, where, cp); ok && len(services) > 0 {
			s.addPolicy(cfg, services)
		}
	}
	s.scoping(hosts, paths)
	return s
}

// istioService resolves a destination host to a Service: "name", "name.ns", "name.ns.svc" or
// "name.ns.svc.cluster.local".
func istioService(host, ns string) (serviceRef, bool) {
	host = strings.TrimSuffix(host, ".cluster.local")
	host = strings.TrimSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	switch {
	case host == "" || strings.Contains(host, "*"):
		return serviceRef{}, false
	case len(parts) == 1:
		return serviceRef{ns, parts[0]}, true
	case len(parts) == 2:
		return serviceRef{parts[1], parts[0]}, true
	}
	return serviceRef{}, false
}

func istioCORS(s *source, where string, cp map[string]any) (corsconfig.CORSConfig, bool) {
	cfg := corsconfig.CORSConfig{UnmatchedPreflights: corsconfig.UnmatchedPreflightsForward}
	anyOrigin := false
	add := func(m corsconfig.OriginMatcher, matchesStar bool) {
		if matchesStar {
			anyOrigin = true
			return
		}
		cfg.AllowOrigins = append(cfg.AllowOrigins, m)
	}
	for _, o := range stringSlice(cp, "allowOrigin") { // deprecated: exact strings
		add(corsconfig.OriginMatcher{Exact: o}, o == "*")
	}
	matchers, _, _ := unstructured.NestedSlice(cp, "allowOrigins")
	for j, it := range matchers {
		sm, _ := it.(map[string]any)
		switch {
		case sm["exact"] != nil:
			v, _ := sm["exact"].(string)
			add(corsconfig.OriginMatcher{Exact: v}, v == "*")
		case sm["prefix"] != nil:
			v, _ := sm["prefix"].(string)
			add(corsconfig.OriginMatcher{Prefix: v}, v == "*" || v == "")
		case sm["regex"] != nil:
			v, _ := sm["regex"].(string)
			re, err := regexp.Compile("^(?:" + v + ")$")
			if err != nil {
				s.lost("%s: corsPolicy.allowOrigins[%d].regex %q does not compile as RE2: %v", where, j, v, err)
				continue
			}
			add(corsconfig.OriginMatcher{Regex: "^(?:" + v + ")$"}, re.MatchString("*"))
		default:
			s.lost("%s: corsPolicy.allowOrigins[%d] has no exact, prefix or regex", where, j)
		}
	}
	if anyOrigin {
		cfg.AllowOrigins = []corsconfig.OriginMatcher{{Wildcard: "*"}}
	}
	if len(cfg.AllowOrigins) == 0 {
		s.lost("%s: corsPolicy allows no origin", where)
		return cfg, false
	}
	cfg.AllowMethods = stringSlice(cp, "allowMethods")
	cfg.AllowHeaders = stringSlice(cp, "allowHeaders")
	cfg.ExposeHeaders = stringSlice(cp, "exposeHeaders")
	cfg.AllowCredentials, _, _ = unstructured.NestedBool(cp, "allowCredentials")
	if v, ok, _ := unstructured.NestedString(cp, "maxAge"); ok && v != "" {
		ma := intstr.FromString(v)
		cfg.MaxAge = &ma
	}
	if v, _, _ := unstructured.NestedString(cp, "unmatchedPreflights"); v == "IGNORE" {
		cfg.UnmatchedPreflights = corsconfig.UnmatchedPreflightsIgnore
	}
	return cfg, true
}
