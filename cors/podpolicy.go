package cors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// PodPolicyVersion is the only PodPolicy version this code writes and reads. It lets a newer
// webhook and an older sidecar (or the reverse) detect that they do not speak the same format
// instead of misreading it.
const PodPolicyVersion = 1

// PodPolicy is the effective per-port CORS policy of a pod: the JSON in the pod annotation
// cors-webhook.io/policy and the sidecar's policy file,
// {"version":1,"ports":{"8080":{...normalized CORSConfig...}}}. A port without an entry passes
// through; an empty Ports map is a valid, pass-through policy.
type PodPolicy struct {
	Version int `json:"version"`
	// Ports maps a decimal port number (1..65535, no leading zeros) to its config.
	Ports map[string]corsconfig.CORSConfig `json:"ports"`
}

// Marshal returns the compact JSON of the pod policy with sorted keys (encoding/json sorts map
// keys), so that equal policies give byte-identical annotations and the reconciler patches pods
// only on real changes.
//
// Every config is normalized (see [Normalize]) and must compile, and every port key must be
// valid, so that whatever is written can be loaded by [ParsePodPolicy]: a bad annotation would
// otherwise only surface in a running sidecar. A zero Version is written as PodPolicyVersion;
// any other version is an error. nil Ports are written as {}.
func (p PodPolicy) Marshal() ([]byte, error) {
	out := PodPolicy{Version: p.Version, Ports: make(map[string]corsconfig.CORSConfig, len(p.Ports))}
	if out.Version == 0 {
		out.Version = PodPolicyVersion
	}
	if out.Version != PodPolicyVersion {
		return nil, fmt.Errorf("cors: pod policy version %d is not supported (want %d)", p.Version, PodPolicyVersion)
	}
	keys := make([]string, 0, len(p.Ports))
	for k := range p.Ports {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := parsePort(k); err != nil {
			return nil, fmt.Errorf("cors: pod policy: %w", err)
		}
		cfg := p.Ports[k]
		path := field.NewPath("ports").Key(k)
		norm, err := Normalize(&cfg)
		if err != nil {
			return nil, fmt.Errorf("cors: pod policy: %s: %w", path, err)
		}
		if _, errs := Compile(norm, path); len(errs) > 0 {
			return nil, fmt.Errorf("cors: pod policy: %w", errs.ToAggregate())
		}
		out.Ports[k] = *norm
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep regexes such as "a&b" readable in the annotation
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParsePodPolicy is DecodePodPolicy without the list of ignored fields.
func ParsePodPolicy(data []byte) (map[uint16]*Policy, error) {
	ports, _, err := DecodePodPolicy(data)
	return ports, err
}

// DecodePodPolicy decodes a pod policy and compiles every port's config; it is how the sidecar
// loads its policy file. A version other than PodPolicyVersion, a bad port key (not a canonical
// decimal in 1..65535) and config errors are errors; config errors name the port through their
// field path (ports[8080].allowOrigins...). On error a sidecar keeps its previous policy, so it
// never runs with half of one.
//
// Version 1 is forward compatible: a newer webhook may add fields to it (a change that old
// sidecars must not misread takes version 2, which they refuse). Fields this build does not
// know, at the top, in a port's config or in an origin matcher, are skipped and returned as
// ignored (their field paths), for the caller to log; an old sidecar restarted after an
// upgrade of the webhook therefore still loads its policy. The result maps port to compiled
// policy; it is empty, not nil, for a policy without ports.
func DecodePodPolicy(data []byte) (_ map[uint16]*Policy, ignored []string, _ error) {
	switch k := jsonKind(data); {
	case k == kindNone || k == kindNull:
		return nil, nil, errors.New("cors: pod policy is empty")
	case !json.Valid(data):
		return nil, nil, errors.New("cors: pod policy is not valid JSON")
	case k != kindObject:
		return nil, nil, fmt.Errorf("cors: pod policy must be a JSON object, got %s", k)
	}
	members, errs := objectMembers(data, nil, false)
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("cors: pod policy: %w", errs.ToAggregate())
	}
	var (
		version    int
		hasVersion bool
		portsRaw   json.RawMessage
	)
	for _, m := range members {
		switch m.name {
		case "version":
			if jsonKind(m.raw) != kindNumber {
				return nil, nil, fmt.Errorf("cors: pod policy: version must be an integer, got %s", jsonKind(m.raw))
			}
			n, err := strconv.Atoi(string(bytes.TrimSpace(m.raw)))
			if err != nil {
				return nil, nil, fmt.Errorf("cors: pod policy: version %s is not an integer", bytes.TrimSpace(m.raw))
			}
			version, hasVersion = n, true
		case "ports":
			portsRaw = m.raw
		default:
			ignored = append(ignored, m.name)
		}
	}
	if !hasVersion {
		return nil, nil, errors.New("cors: pod policy: version is missing")
	}
	if version != PodPolicyVersion {
		return nil, nil, fmt.Errorf("cors: pod policy version %d is not supported (this build reads version %d)", version, PodPolicyVersion)
	}
	out := map[uint16]*Policy{}
	switch jsonKind(portsRaw) {
	case kindNone, kindNull:
		return out, ignored, nil
	case kindObject:
	default:
		return nil, nil, fmt.Errorf("cors: pod policy: ports must be an object, got %s", jsonKind(portsRaw))
	}
	portsPath := field.NewPath("ports")
	ports, errs := objectMembers(portsRaw, portsPath, true)
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("cors: pod policy: %w", errs.ToAggregate())
	}
	for _, m := range ports {
		port, err := parsePort(m.name)
		if err != nil {
			return nil, nil, fmt.Errorf("cors: pod policy: %w", err)
		}
		path := portsPath.Key(m.name)
		known, skipped := knownConfigFields(m.raw, path)
		ignored = append(ignored, skipped...)
		cfg, errs := Decode(known, path)
		if len(errs) == 0 {
			var pol *Policy
			pol, errs = Compile(cfg, path)
			out[port] = pol
		}
		if len(errs) > 0 {
			return nil, nil, fmt.Errorf("cors: pod policy: %w", errs.ToAggregate())
		}
	}
	return out, ignored, nil
}

// parsePort accepts exactly the canonical decimal form of a port in 1..65535, so that one port
// has one key and lookups by strconv.Itoa(port) always hit.
func parsePort(key string) (uint16, error) {
	n, err := strconv.ParseUint(key, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != key {
		return 0, fmt.Errorf("port key %q is not a port number in 1..65535", key)
	}
	return uint16(n), nil
}

// knownConfigFields returns a port's config without the fields Decode does not know (in the
// config and in its allowOrigins matchers), and their paths. What is not an object, or not
// valid, is returned as it is, for Decode to report.
func knownConfigFields(raw []byte, p *field.Path) (json.RawMessage, []string) {
	members, errs := objectMembers(raw, p, false)
	if len(errs) > 0 {
		return raw, nil
	}
	var (
		kept    []member
		ignored []string
	)
	for _, m := range members {
		if !slices.Contains(configFields, m.name) {
			ignored = append(ignored, p.Child(m.name).String())
			continue
		}
		if m.name == fieldAllowOrigins && jsonKind(m.raw) == kindArray {
			var items []json.RawMessage
			if json.Unmarshal(m.raw, &items) == nil {
				kept := items[:0]
				for i, item := range items {
					if jsonKind(item) != kindObject {
						kept = append(kept, item)
						continue
					}
					ip := p.Child(m.name).Index(i)
					matcher, merrs := objectMembers(item, ip, false)
					if len(merrs) > 0 {
						kept = append(kept, item)
						continue
					}
					var known []member
					for _, mm := range matcher {
						if slices.Contains(matcherFields, mm.name) {
							known = append(known, mm)
						} else {
							ignored = append(ignored, ip.Child(mm.name).String())
						}
					}
					// An entry made only of matchers this build does not know is left out, not
					// kept empty: a future matcher then narrows the policy of an old sidecar
					// instead of making it refuse the whole policy.
					if len(known) > 0 || len(matcher) == 0 {
						kept = append(kept, joinMembers(known))
					}
				}
				items = kept
				if b, err := json.Marshal(items); err == nil {
					m.raw = b
				}
			}
		}
		kept = append(kept, m)
	}
	if len(ignored) == 0 {
		return raw, nil
	}
	return joinMembers(kept), ignored
}

// joinMembers writes members back as a JSON object, in their order.
func joinMembers(members []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		b.Write(name)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
	return b.Bytes()
}
