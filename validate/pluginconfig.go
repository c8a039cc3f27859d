package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/cors"
)

// BrowserMaxAge is the longest preflight cache any major browser honours for
// access-control-max-age (Chromium caps it at 2 hours; Firefox at 24 hours).
const BrowserMaxAge = 2 * time.Hour

// PluginConfigCreate validates a new PluginConfig. Every PluginConfig needs a plugin name and
// well-formed destinationRefs (kind Service, a name, this namespace). A PluginConfig of a CORS
// plugin also needs a valid CORS config (strict decoding and every rule of package cors, plus
// exact origins that are serialized origins), and, against the existing PluginConfigs of that
// plugin in r, no second config for one of its Services or for a Service that can select the
// same pods on the same target port. Risky origin matchers and long maxAge values are warnings.
func PluginConfigCreate(r clusterstate.Reader, cfg *v1alpha1.PluginConfig, opts Options) (field.ErrorList, []string) {
	c := &collector{opts: opts}
	c.validateMeta(&cfg.ObjectMeta, true)
	spec := field.NewPath("spec")
	plugin := cfg.Spec.Plugin
	pluginOK := false
	switch msgs := validation.IsDNS1123Subdomain(plugin); {
	case plugin == "":
		c.add(OriginPlugin, field.Required(spec.Child("plugin"), "the name of the plugin this configures is required"))
	case len(msgs) > 0:
		c.add(OriginPlugin, field.Invalid(spec.Child("plugin"), plugin, "must be the name of a Plugin: "+strings.Join(msgs, "; ")))
	default:
		pluginOK = true
	}
	refsOK := c.validateDestinationRefs(cfg)
	if !pluginOK {
		return c.result()
	}
	if !opts.Plugins.Has(plugin) {
		c.warn(spec.Child("plugin"), "%q is not a CORS plugin (--cors-plugins=%s): cors-webhook ignores this config", plugin, opts.Plugins.String())
		return c.result()
	}
	if declared, err := r.Plugin(plugin); err != nil {
		c.add("", field.InternalError(spec.Child("plugin"), err))
	} else if declared == nil {
		c.warn(spec.Child("plugin"), "Plugin %q is not declared: this config has no effect until a Plugin of that name exists", plugin)
	}
	c.validateCORSConfig(cfg.Spec.Config.Raw, spec.Child("config"))
	if len(cfg.Spec.DestinationRefs) == 0 {
		c.warn(spec.Child("destinationRefs"), "names no Service: this config applies to no pod")
	}
	if refsOK {
		c.checkConfigConflicts(r, cfg)
	}
	return c.result()
}

// PluginConfigUpdate validates an update of a PluginConfig like a create, the config itself
// excluded from the existing ones. An update that leaves the spec unchanged, or of a config
// being deleted, is always accepted.
func PluginConfigUpdate(r clusterstate.Reader, cfg, old *v1alpha1.PluginConfig, opts Options) (field.ErrorList, []string) {
	if unchangedSpec(&cfg.ObjectMeta, cfg.Spec, old.Spec) {
		return nil, nil
	}
	return PluginConfigCreate(r, cfg, opts)
}

// validateDestinationRefs checks the shape of every reference and reports whether all are
// well-formed Service references.
func (c *collector) validateDestinationRefs(cfg *v1alpha1.PluginConfig) bool {
	refsPath := field.NewPath("spec", "destinationRefs")
	before := len(c.errs)
	if n := len(cfg.Spec.DestinationRefs); n > MaxDestinationRefs {
		c.add(OriginLimit, field.TooMany(refsPath, n, MaxDestinationRefs))
	}
	seen := map[string]bool{}
	for i, ref := range cfg.Spec.DestinationRefs {
		p := refsPath.Index(i)
		switch ref.Kind {
		case "Service":
		case "":
			c.add(OriginDestinationRefs, field.Required(p.Child("kind"), `must be "Service"`))
		default:
			c.add(OriginDestinationRefs, field.NotSupported(p.Child("kind"), ref.Kind, []string{"Service"}))
		}
		if ref.APIVersion != "" && ref.APIVersion != "v1" {
			c.add(OriginDestinationRefs, field.NotSupported(p.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
		}
		switch msgs := validation.IsDNS1035Label(ref.Name); {
		case ref.Name == "":
			c.add(OriginDestinationRefs, field.Required(p.Child("name"), "the name of a Service is required"))
		case len(msgs) > 0:
			c.add(OriginDestinationRefs, field.Invalid(p.Child("name"), ref.Name, "must be a Service name: "+strings.Join(msgs, "; ")))
		case seen[ref.Name]:
			c.add(OriginDestinationRefs, withDetail(field.Duplicate(p.Child("name"), ref.Name), "each Service may be named once"))
		}
		seen[ref.Name] = true
		if ref.Namespace != "" && ref.Namespace != cfg.Namespace {
			c.add(OriginDestinationRefs, field.Forbidden(p.Child("namespace"), fmt.Sprintf(
				"must be the PluginConfig's own namespace %q (or empty): a PluginConfig configures Services of its namespace only", cfg.Namespace)))
		}
	}
	return len(c.errs) == before
}

// validateCORSConfig decodes and compiles the config with package cors (the same code the
// injector and the sidecar use), then checks what only matters at admission: the form of
// exact origins, and the risky-but-legal settings that become warnings.
func (c *collector) validateCORSConfig(raw []byte, p *field.Path) {
	cfg, errs := cors.Decode(raw, p)
	if len(errs) > 0 {
		c.add(OriginCORSConfig, errs...)
		return
	}
	if errs := checkLimits(cfg, p); len(errs) > 0 {
		c.add(OriginLimit, errs...)
		return
	}
	_, errs = cors.Compile(cfg, p)
	c.add(OriginCORSConfig, errs...)
	for i, o := range cfg.AllowOrigins {
		c.checkOrigin(o, p.Child("allowOrigins").Index(i), cfg.AllowCredentials)
	}
	c.checkMethods(cfg.AllowMethods, p.Child("allowMethods"))
	// A "*" in allowMethods or allowHeaders works with credentials too: the sidecar answers with
	// the requested method and headers (GEP-1767). Only exposeHeaders has no request to echo.
	if i := slices.Index(cfg.ExposeHeaders, "*"); i >= 0 && cfg.AllowCredentials {
		c.warn(p.Child("exposeHeaders").Index(i), `"*" is a wildcard only for requests without credentials: with allowCredentials: true browsers would take it literally, so the sidecar leaves it out and exposes only the headers listed by name; list the response headers instead`)
	}
	if cfg.MaxAge != nil {
		if d, err := cors.ParseMaxAge(*cfg.MaxAge); err == nil && d > BrowserMaxAge {
			c.warn(p.Child("maxAge"), "%s (%ds) is longer than browsers cache a preflight: Chromium caps it at 7200s (2h), Firefox at 86400s (24h)",
				cfg.MaxAge.String(), int64(d/time.Second))
		}
	}
}

// fetchNormalizedMethods are the methods Fetch upper-cases in a request (fetch()'s and
// XMLHttpRequest's method argument); every other method is sent, and compared with
// access-control-allow-methods, exactly as written.
var fetchNormalizedMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}

// checkMethods warns about methods with lower-case letters that browsers do not normalize: a
// script's fetch(url, {method: "PATCH"}) is preflighted as PATCH, which "patch" does not allow.
func (c *collector) checkMethods(methods []string, p *field.Path) {
	for i, m := range methods {
		upper := strings.ToUpper(m)
		if m == upper || slices.Contains(fetchNormalizedMethods, upper) {
			continue
		}
		c.warn(p.Index(i), "browsers compare methods case-sensitively and normalize only %s, so %q allows only requests that spell it %q; the usual spelling is %q (use %q)",
			strings.Join(fetchNormalizedMethods, ", "), m, m, upper, upper)
	}
}

// checkOrigin checks one allowOrigins entry that sets exactly one matcher (Compile reports the
// others): the matcher's own problems, then what it lets through.
func (c *collector) checkOrigin(o v1alpha1.OriginMatcher, p *field.Path, credentials bool) {
	kind, value, matches, ok := c.originMatcher(o, p)
	if !ok {
		return
	}
	probe := ""
	for _, po := range probeOrigins {
		if matches(po) {
			probe = po
			break
		}
	}
	if kind == "regex" && probe == "" {
		// A regex that matches any origin on purpose gains nothing from anchors.
		c.regexRisks(o.Regex, p.Child(kind))
	}
	switch {
	case probe != "" && credentials:
		c.risk(p.Child(kind), value, fmt.Sprintf(
			"%s %s matches any origin (e.g. %q) while allowCredentials is true: every website could send credentialed requests and read the responses", kind, quoteValue(kind, value), probe))
	case probe == "" && matches("null"):
		c.risk(p.Child(kind), value, fmt.Sprintf(
			`%s %s allows the origin "null", which sandboxed iframes, local files and redirects send, so any site can produce it`, kind, quoteValue(kind, value)))
	}
}

// originMatcher checks the one matcher o sets, reporting its own problems, and returns it as a
// predicate; ok is false when o does not set exactly one matcher or the matcher is invalid
// (then reported here or by Compile).
func (c *collector) originMatcher(o v1alpha1.OriginMatcher, p *field.Path) (kind, value string, matches func(string) bool, ok bool) {
	set := 0
	for _, v := range []string{o.Exact, o.Prefix, o.Regex, o.Wildcard} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return "", "", nil, false
	}
	switch {
	case o.Exact != "":
		if problem := exactOriginProblem(o.Exact); problem != "" {
			c.add(OriginOrigin, field.Invalid(p.Child("exact"), o.Exact, problem))
			return "", "", nil, false
		}
		return "exact", o.Exact, func(origin string) bool { return origin == o.Exact }, true
	case o.Prefix != "":
		problem, leak := prefixCheck(o.Prefix)
		if problem != "" {
			c.add(OriginOrigin, field.Invalid(p.Child("prefix"), o.Prefix, problem))
			return "", "", nil, false
		}
		if leak != "" {
			c.risk(p.Child("prefix"), o.Prefix, leak)
		}
		return "prefix", o.Prefix, func(origin string) bool { return strings.HasPrefix(origin, o.Prefix) }, true
	case o.Regex != "":
		re, err := regexp.Compile(o.Regex)
		if err != nil {
			return "", "", nil, false // reported by Compile
		}
		return "regex", o.Regex, re.MatchString, true
	}
	pol, errs := cors.Compile(&corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{o}}, p)
	if len(errs) > 0 {
		return "", "", nil, false // reported by Compile
	}
	if _, rest, ok := strings.Cut(o.Wildcard, "://*."); ok {
		if host, _, _ := splitHostPort(rest); !strings.Contains(host, ".") {
			c.risk(p.Child("wildcard"), o.Wildcard, fmt.Sprintf(
				"wildcard %q allows every site under the top-level domain %q, which anyone can register a name in; name your own domain", o.Wildcard, host))
		}
	}
	return "wildcard", o.Wildcard, func(origin string) bool { return pol.Match(origin) == 0 }, true
}

// regexRisks warns about an unanchored regex and an unescaped ".", with the repaired pattern.
func (c *collector) regexRisks(pattern string, p *field.Path) {
	start, end, dots, fix := regexRisks(pattern)
	use := ""
	switch w := subdomainRegex(pattern); {
	case w != "":
		use = fmt.Sprintf("; use wildcard %q", w)
	case fix != "":
		use = "; use " + yamlQuote(fix)
	}
	if start || end {
		c.risk(p, pattern, fmt.Sprintf(
			"regex %s is not anchored with ^ and $: it is searched anywhere in the Origin, so origins that merely contain a match pass too%s", yamlQuote(pattern), use))
	}
	if dots {
		c.risk(p, pattern, fmt.Sprintf(
			"regex %s has an unescaped \".\", which matches any character, not only a dot%s", yamlQuote(pattern), use))
	}
}

// quoteValue quotes a matcher value for a message; regexes the way YAML keeps backslashes.
func quoteValue(kind, value string) string {
	if kind == "regex" {
		return yamlQuote(value)
	}
	return fmt.Sprintf("%q", value)
}

// checkConfigConflicts rejects a second policy for one pod port: another PluginConfig of the
// same CORS plugin naming one of the same Services, or naming a Service whose selector can
// select the same pods as one of ours with the same target port. A named target port against
// a numbered one is a warning: only the pods' container ports tell whether they are the same.
func (c *collector) checkConfigConflicts(r clusterstate.Reader, cfg *v1alpha1.PluginConfig) {
	refsPath := field.NewPath("spec", "destinationRefs")
	all, err := r.PluginConfigsForPlugin(cfg.Namespace, cfg.Spec.Plugin)
	if err != nil {
		c.add("", field.InternalError(refsPath, err))
		return
	}
	var others []*v1alpha1.PluginConfig
	for _, o := range all {
		if o.Name != cfg.Name || o.Namespace != cfg.Namespace {
			others = append(others, o)
		}
	}
	slices.SortFunc(others, func(a, b *v1alpha1.PluginConfig) int { return strings.Compare(a.Name, b.Name) })
	if len(others) == 0 {
		return
	}
	ours := map[string]bool{}
	for _, ref := range cfg.Spec.DestinationRefs {
		ours[ref.Name] = true
	}
	reported, warned := 0, 0
	for i, ref := range cfg.Spec.DestinationRefs {
		p := refsPath.Index(i)
		for _, o := range others {
			if o.NamesService(ref.Name) {
				if reported++; reported <= maxReported {
					c.add(OriginConfigConflict, field.Forbidden(p, fmt.Sprintf(
						"Service %q is already configured for plugin %q by PluginConfig %s: a Service can have only one CORS config",
						ref.Name, cfg.Spec.Plugin, key(o.Namespace, o.Name))))
				}
			}
		}
		svc, err := r.Service(cfg.Namespace, ref.Name)
		if err != nil {
			c.add("", field.InternalError(p, err))
			return
		}
		if svc == nil {
			continue
		}
		if err := c.checkServiceOverlaps(r, cfg.Namespace, p, svc, others, ours, &reported, &warned); err != nil {
			c.add("", field.InternalError(p, err))
			return
		}
	}
	if reported > maxReported {
		c.add(OriginConfigConflict, field.Forbidden(refsPath, fmt.Sprintf("and %d more conflicts", reported-maxReported)))
	}
	if warned > maxReported {
		c.warn(refsPath, "and %d more possible conflicts", warned-maxReported)
	}
}

// checkServiceOverlaps rejects the Services of others (other than ours) that can select the
// same pods as svc on the same target port, and warns about those that may (a named target
// port against a numbered one); reported and warned count them.
func (c *collector) checkServiceOverlaps(r clusterstate.Reader, namespace string, p *field.Path, svc *corev1.Service, others []*v1alpha1.PluginConfig, ours map[string]bool, reported, warned *int) error {
	for _, o := range others {
		for _, oref := range o.Spec.DestinationRefs {
			if oref.Kind != "Service" || ours[oref.Name] {
				continue // the same Service is reported by checkConfigConflicts
			}
			osvc, err := r.Service(namespace, oref.Name)
			if err != nil {
				return err
			}
			if osvc == nil {
				continue
			}
			pods, ok := servicesOverlap(svc, osvc)
			if !ok {
				continue
			}
			same, maybe := commonTargetPorts(svc, osvc)
			for _, port := range same {
				if *reported++; *reported <= maxReported {
					c.add(OriginConfigConflict, field.Forbidden(p, fmt.Sprintf(
						"Service %q can select the same pods as Service %q (e.g. pods labelled %s), which PluginConfig %s configures, on target port %s: one pod port would have two CORS policies",
						svc.Name, osvc.Name, formatLabels(pods), key(o.Namespace, o.Name), port)))
				}
			}
			for _, pair := range maybe {
				if *warned++; *warned <= maxReported {
					c.warn(p, "Service %q can select the same pods as Service %q of PluginConfig %s (e.g. pods labelled %s): if target ports %s are the same container port, it would have two CORS policies",
						svc.Name, osvc.Name, key(o.Namespace, o.Name), formatLabels(pods), pair)
				}
			}
		}
	}
	return nil
}

// servicesOverlap decides whether two Services' selectors can select one pod, with the labels
// of such a pod. A Service without a selector (or of type ExternalName) selects no pods.
func servicesOverlap(a, b *corev1.Service) (map[string]string, bool) {
	if len(a.Spec.Selector) == 0 || len(b.Spec.Selector) == 0 ||
		a.Spec.Type == corev1.ServiceTypeExternalName || b.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, false
	}
	pods := make(map[string]string, len(a.Spec.Selector)+len(b.Spec.Selector))
	for k, v := range a.Spec.Selector {
		pods[k] = v
	}
	for k, v := range b.Spec.Selector {
		if w, ok := pods[k]; ok && w != v {
			return nil, false
		}
		pods[k] = v
	}
	return pods, true
}

// commonTargetPorts returns the TCP target ports both Services send to (equal numbers or equal
// names), and the number/name pairs that may or may not be the same container port.
func commonTargetPorts(a, b *corev1.Service) (same, maybe []string) {
	for _, x := range targetPorts(a) {
		for _, y := range targetPorts(b) {
			switch {
			case x.Type == y.Type && x.String() == y.String():
				if !slices.Contains(same, x.String()) {
					same = append(same, x.String())
				}
			case x.Type != y.Type:
				pair := x.String() + " and " + y.String()
				if !slices.Contains(maybe, pair) {
					maybe = append(maybe, pair)
				}
			}
		}
	}
	return same, maybe
}

// targetPorts returns the target ports of a Service's TCP ports (clusterstate.TargetPort).
// UDP and SCTP ports never carry HTTP.
func targetPorts(svc *corev1.Service) []intstr.IntOrString {
	var out []intstr.IntOrString
	for i := range svc.Spec.Ports {
		if p := &svc.Spec.Ports[i]; clusterstate.Protocol(p.Protocol) == corev1.ProtocolTCP {
			out = append(out, clusterstate.TargetPort(p))
		}
	}
	return out
}
