package convert

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
	"github.com/cors-webhook/cors-webhook/cors"
)

// gepDefaultMaxAge is HTTPCORSFilter's maxAge when the filter leaves it out.
const gepDefaultMaxAge = 5

// fromHTTPRoute imports the CORS filter of every rule (GEP-1767, Gateway API v1.5 Standard). Its
// semantics are the sidecar's opt-in ones: wildcard origins, a credentialed "*" answered with
// the request's method and headers, and preflights of other origins not reaching the backend.
func fromHTTPRoute(obj *unstructured.Unstructured) *source {
	s := newSource(obj)
	ns := namespaceOf(obj)
	hostnames, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "hostnames")
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	var paths []string
	for i, r := range rules {
		rule, _ := r.(map[string]any)
		where := fmt.Sprintf("rules[%d]", i)
		if name, _, _ := unstructured.NestedString(rule, "name"); name != "" {
			where = fmt.Sprintf("rules[%d] (%s)", i, name)
		}
		var filter map[string]any
		filters, _, _ := unstructured.NestedSlice(rule, "filters")
		for _, f := range filters {
			fm, _ := f.(map[string]any)
			if t, _, _ := unstructured.NestedString(fm, "type"); t == "CORS" {
				filter, _, _ = unstructured.NestedMap(fm, "cors")
			}
		}
		if filter == nil {
			continue
		}
		var services []serviceRef
		refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		for j, b := range refs {
			ref, _ := b.(map[string]any)
			group, _, _ := unstructured.NestedString(ref, "group")
			kind, ok, _ := unstructured.NestedString(ref, "kind")
			if !ok {
				kind = "Service"
			}
			name, _, _ := unstructured.NestedString(ref, "name")
			if group != "" || kind != "Service" || name == "" {
				s.lost("%s: backendRefs[%d] %s %q is not a Service: the sidecar runs in pods behind Services", where, j, kind, name)
				continue
			}
			refNS, ok, _ := unstructured.NestedString(ref, "namespace")
			if !ok || refNS == "" {
				refNS = ns
			}
			services = append(services, serviceRef{refNS, name})
		}
		matches, _, _ := unstructured.NestedSlice(rule, "matches")
		for _, m := range matches {
			mm, _ := m.(map[string]any)
			if v, ok, _ := unstructured.NestedString(mm, "path", "value"); ok && v != "/" {
				t, _, _ := unstructured.NestedString(mm, "path", "type")
				if t == "" {
					t = "PathPrefix"
				}
				paths = append(paths, fmt.Sprintf("%s %s %q", where, t, v))
			}
		}
		if cfg, ok := gepCORS(s, where, filter); ok && len(services) > 0 {
			s.addPolicy(cfg, services)
		}
	}
	s.scoping(hostnames, paths)
	return s
}

func gepCORS(s *source, where string, f map[string]any) (corsconfig.CORSConfig, bool) {
	cfg := corsconfig.CORSConfig{UnmatchedPreflights: corsconfig.UnmatchedPreflightsIgnore}
	for _, o := range stringSlice(f, "allowOrigins") {
		m, problem := gepOrigin(o)
		if problem != "" {
			s.lost("%s: cors.allowOrigins %q: %s", where, o, problem)
			continue
		}
		cfg.AllowOrigins = append(cfg.AllowOrigins, m)
	}
	if len(cfg.AllowOrigins) == 0 {
		s.lost("%s: the CORS filter allows no origin", where)
		return cfg, false
	}
	cfg.AllowCredentials, _, _ = unstructured.NestedBool(f, "allowCredentials")
	cfg.AllowMethods = stringSlice(f, "allowMethods")
	cfg.AllowHeaders = stringSlice(f, "allowHeaders")
	cfg.ExposeHeaders = stringSlice(f, "exposeHeaders")
	maxAge, ok, _ := unstructured.NestedInt64(f, "maxAge")
	if !ok {
		maxAge = gepDefaultMaxAge
	}
	if maxAge > 0 {
		v := intstr.FromInt32(int32(min(maxAge, 1<<31-1)))
		cfg.MaxAge = &v
	}
	return cfg, true
}

// gepOrigin turns one CORSOrigin into a matcher: "*" and "*."-hosts into a wildcard entry, any
// other origin into the exact form browsers send (lower case, no default port), since GEP-1767
// compares origins with the default port filled in.
func gepOrigin(o string) (corsconfig.OriginMatcher, string) {
	if o == "*" || strings.Contains(o, "://*") {
		w := strings.ToLower(o)
		if problem := cors.WildcardProblem(w); problem != "" {
			return corsconfig.OriginMatcher{}, problem
		}
		return corsconfig.OriginMatcher{Wildcard: w}, ""
	}
	scheme, rest, ok := strings.Cut(strings.ToLower(o), "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "/?#@*") {
		return corsconfig.OriginMatcher{}, "not scheme://host[:port] with scheme http or https"
	}
	if host, port, hasPort := strings.Cut(rest, ":"); hasPort && port == defaultPorts[scheme] {
		rest = host
	}
	return corsconfig.OriginMatcher{Exact: scheme + "://" + rest}, ""
}
