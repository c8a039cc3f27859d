package validate

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// suggestion is a fix a message proposes for one list item of spec.config: the items that
// replace it (origin matchers as {kind: value}, or strings).
type suggestion struct {
	list  string // "allowOrigins", "allowMethods", ...
	index int
	items []any
	text  string // the message, for failures
}

var (
	itemPath   = regexp.MustCompile(`^spec\.config\.(\w+)\[(\d+)\](?:\.(exact|prefix|regex|wildcard))?$`)
	quoted     = `("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')`
	splitFix   = regexp.MustCompile(`split it into entries ((?:\{(?:exact|prefix|regex): "(?:[^"\\]|\\.)*"\}(?:, )?)+)`)
	splitEntry = regexp.MustCompile(`\{(exact|prefix|regex): ("(?:[^"\\]|\\.)*")\}`)
	kindFix    = regexp.MustCompile(`\b(?:use|or) (exact|prefix|regex|wildcard) ` + quoted)
	plainFix   = regexp.MustCompile(`\buse ` + quoted)
)

func unquote(t *testing.T, q string) string {
	t.Helper()
	if strings.HasPrefix(q, "'") {
		return strings.ReplaceAll(q[1:len(q)-1], "''", "'")
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		t.Fatalf("unquoting %s: %v", q, err)
	}
	return s
}

// suggestionsOf parses the fixes out of one error or warning at path.
func suggestionsOf(t *testing.T, path, text string) []suggestion {
	m := itemPath.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	index, _ := strconv.Atoi(m[2])
	list, kind := m[1], m[3]
	item := func(k, v string) any {
		if k == "" {
			return v
		}
		return map[string]any{k: v}
	}
	var out []suggestion
	if sm := splitFix.FindStringSubmatch(text); sm != nil {
		s := suggestion{list: list, index: index, text: text}
		for _, e := range splitEntry.FindAllStringSubmatch(sm[1], -1) {
			s.items = append(s.items, item(e[1], unquote(t, e[2])))
		}
		return append(out, s)
	}
	for _, km := range kindFix.FindAllStringSubmatch(text, -1) {
		out = append(out, suggestion{list: list, index: index, items: []any{item(km[1], unquote(t, km[2]))}, text: text})
	}
	rest := kindFix.ReplaceAllString(text, "")
	for _, pm := range plainFix.FindAllStringSubmatch(rest, -1) {
		out = append(out, suggestion{list: list, index: index, items: []any{item(kind, unquote(t, pm[1]))}, text: text})
	}
	return out
}

// TestSuggestedFixesValidateClean runs every fix that a message of the validation tables
// suggests back through validation: applied to its config, the fixed items must get no error
// and no warning.
func TestSuggestedFixesValidateClean(t *testing.T) {
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	origin := func(kind, value string) map[string]any {
		return map[string]any{"allowOrigins": []any{map[string]any{kind: value}}}
	}
	var configs []map[string]any
	for _, tt := range exactOriginTests {
		configs = append(configs, origin("exact", tt.origin))
	}
	for _, tt := range prefixTests {
		configs = append(configs, origin("prefix", tt.prefix))
	}
	for _, tt := range regexRiskTests {
		configs = append(configs, origin("regex", tt.regex))
	}
	for _, tt := range corsRuleTests {
		var cfg map[string]any
		if tt.config == "-" || yaml.Unmarshal([]byte(tt.config), &cfg) != nil {
			continue
		}
		configs = append(configs, cfg)
	}
	var seed map[string]any
	if err := json.Unmarshal(seedConfig(t).Spec.Config.Raw, &seed); err != nil {
		t.Fatal(err)
	}
	configs = append(configs, seed)

	validate := func(cfg map[string]any) ([]string, []string) {
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		pc := configWith(t, "{}")
		pc.Spec.Config.Raw = raw
		errs, warnings := PluginConfigCreate(r, pc, Options{})
		var paths, texts []string
		for _, e := range errs {
			paths, texts = append(paths, e.Field), append(texts, e.Detail)
		}
		for _, w := range warnings {
			p, text, _ := strings.Cut(w, ": ")
			paths, texts = append(paths, p), append(texts, text)
		}
		return paths, texts
	}
	checked := 0
	for _, cfg := range configs {
		paths, texts := validate(cfg)
		for i := range paths {
			for _, s := range suggestionsOf(t, paths[i], texts[i]) {
				items, ok := cfg[s.list].([]any)
				if !ok || s.index >= len(items) {
					t.Fatalf("%s[%d] not in %v", s.list, s.index, cfg)
				}
				fixed := map[string]any{}
				for k, v := range cfg {
					fixed[k] = v
				}
				fixed[s.list] = append(append(append([]any(nil), items[:s.index]...), s.items...), items[s.index+1:]...)
				gotPaths, gotTexts := validate(fixed)
				for j := range gotPaths {
					for k := range s.items {
						p := "spec.config." + s.list + "[" + strconv.Itoa(s.index+k) + "]"
						if gotPaths[j] == p || strings.HasPrefix(gotPaths[j], p+".") {
							t.Errorf("the fix %v of %q\n  (for %s: %s)\n  gets %s: %s", s.items, cfg[s.list], paths[i], s.text, gotPaths[j], gotTexts[j])
						}
					}
				}
				checked++
			}
		}
	}
	// The parser must keep up with the messages' wording.
	if checked < 25 {
		t.Errorf("only %d suggested fixes found in the tables' messages", checked)
	}
	t.Logf("%d suggested fixes validate clean", checked)
}
