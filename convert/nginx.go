package convert

import (
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// ingress-nginx's CORS annotations, with the defaults and input checks of its annotation
// parser: a value its check refuses is replaced by the default (an origin is skipped), exactly
// as the controller did, so the converted policy answers what nginx answered.
const nginxPrefix = "nginx.ingress.kubernetes.io/"

var (
	nginxDefaultMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	nginxDefaultHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	nginxDefaultMaxAge  = 1728000

	nginxOrigin  = regexp.MustCompile(`^(https?://(\*\.)?[A-Za-z0-9\-\.]*(:[0-9]+)?|\*)?$`)
	nginxMethods = regexp.MustCompile(`^([A-Za-z]+,?\s?)+$`)
	nginxHeaders = regexp.MustCompile(`^([A-Za-z0-9\-\_]+,?\s?)+$`)
	nginxExpose  = regexp.MustCompile(`^(([A-Za-z0-9\-\_]+|\*),?\s?)+$`)
)

// ingressBackends are the Ingress's backend Services (each once; other backends are recorded
// as lost in s), and its hosts and paths.
func ingressBackends(obj *unstructured.Unstructured, ns string, s *source) (services []serviceRef, hosts, paths []string) {
	addService := func(backend map[string]any) {
		if name, ok, _ := unstructured.NestedString(backend, "service", "name"); ok && name != "" {
			ref := serviceRef{ns, name}
			for _, have := range services {
				if have == ref {
					return
				}
			}
			services = append(services, ref)
			return
		}
		if kind, ok, _ := unstructured.NestedString(backend, "resource", "kind"); ok {
			s.lost("backend %s %q is not a Service: the sidecar runs in pods behind Services", kind, nestedString(backend, "resource", "name"))
		}
	}
	if b, ok, _ := unstructured.NestedMap(obj.Object, "spec", "defaultBackend"); ok {
		addService(b)
	}
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		if h, _, _ := unstructured.NestedString(rule, "host"); h != "" {
			hosts = append(hosts, h)
		}
		ps, _, _ := unstructured.NestedSlice(rule, "http", "paths")
		for _, p := range ps {
			path, _ := p.(map[string]any)
			if v, _, _ := unstructured.NestedString(path, "path"); v != "" && v != "/" {
				paths = append(paths, v)
			}
			if b, ok, _ := unstructured.NestedMap(path, "backend"); ok {
				addService(b)
			}
		}
	}
	return services, hosts, paths
}

func fromIngress(obj *unstructured.Unstructured) *source {
	s := newSource(obj)
	ann := obj.GetAnnotations()
	get := func(name string) (string, bool) {
		v, ok := ann[nginxPrefix+name]
		return v, ok
	}
	if v, _ := get("enable-cors"); !parseBool(v, false) {
		return s
	}
	ns := namespaceOf(obj)

	services, hosts, paths := ingressBackends(obj, ns, s)
	if len(services) == 0 {
		s.lost("no backend Service: nothing to attach the CORS policy to")
		return s
	}

	cfg := corsconfig.CORSConfig{UnmatchedPreflights: corsconfig.UnmatchedPreflightsForward}
	credentials, _ := get("cors-allow-credentials")
	cfg.AllowCredentials = parseBool(credentials, true)
	anyOrigin := true
	if v, ok := get("cors-allow-origin"); ok {
		anyOrigin = false
		for _, o := range splitList(v) {
			if o == "*" {
				anyOrigin = true
				break
			}
			if !nginxOrigin.MatchString(o) {
				s.lost("origin %q: ingress-nginx skipped it too (not http(s)://[*.]host[:port])", o)
				continue
			}
			m, problem := nginxOriginMatcher(o)
			if problem != "" {
				s.lost("origin %q: %s", o, problem)
				continue
			}
			cfg.AllowOrigins = append(cfg.AllowOrigins, m)
		}
	}
	if anyOrigin {
		cfg.AllowOrigins = []corsconfig.OriginMatcher{{Wildcard: "*"}}
		if cfg.AllowCredentials {
			// nginx answered "*" together with credentials: browsers refuse that pair for
			// credentialed requests, so only uncredentialed ones ever worked. The sidecar echoes
			// the origin, which with credentials would let every site read credentialed answers.
			cfg.AllowCredentials = false
			s.note(`origin "*" with credentials: ingress-nginx sent access-control-allow-origin "*", which browsers refuse for credentialed requests; converted without allowCredentials, which keeps what browsers allowed`)
		}
	}
	if len(cfg.AllowOrigins) == 0 {
		s.lost("no usable origin in cors-allow-origin")
		return s
	}
	cfg.AllowMethods = splitList(annotationOr(get, "cors-allow-methods", nginxMethods, nginxDefaultMethods))
	cfg.AllowHeaders = splitList(annotationOr(get, "cors-allow-headers", nginxHeaders, nginxDefaultHeaders))
	cfg.ExposeHeaders = splitList(annotationOr(get, "cors-expose-headers", nginxExpose, ""))
	maxAge := nginxDefaultMaxAge
	if v, ok := get("cors-max-age"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			maxAge = n
		}
	}
	if maxAge > 0 {
		v := intstr.FromInt32(int32(min(maxAge, 1<<31-1)))
		cfg.MaxAge = &v
	}
	s.addPolicy(cfg, services)
	s.scoping(hosts, paths)
	return s
}

// parseBool reads a boolean annotation as ingress-nginx does (strconv.ParseBool: "true", "True",
// "1", ...), def when it is missing or unreadable.
func parseBool(v string, def bool) bool {
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return def
}

// annotationOr is an annotation's value when ingress-nginx's check accepts it, else its default.
func annotationOr(get func(string) (string, bool), name string, check *regexp.Regexp, def string) string {
	if v, ok := get(name); ok && check.MatchString(v) {
		return v
	}
	return def
}

// nginxOriginMatcher converts one origin as ingress-nginx matched it: case-insensitively, to
// the end of the Origin, with "*." standing for exactly one label ([A-Za-z0-9-]+).
func nginxOriginMatcher(o string) (corsconfig.OriginMatcher, string) {
	scheme, rest, _ := strings.Cut(o, "://")
	rest = strings.ToLower(rest)
	host, port, hasPort := strings.Cut(rest, ":")
	if hasPort && port == defaultPorts[scheme] {
		return corsconfig.OriginMatcher{}, "browsers omit the default port from the Origin, so ingress-nginx never matched it either"
	}
	if h, ok := strings.CutPrefix(host, "*."); ok {
		re := "^" + scheme + `://[a-z0-9-]+\.` + regexp.QuoteMeta(h)
		if hasPort {
			re += ":" + port
		}
		return corsconfig.OriginMatcher{Regex: re + "$"}, ""
	}
	return corsconfig.OriginMatcher{Exact: scheme + "://" + rest}, ""
}

func nestedString(obj map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedString(obj, path...)
	return v
}
