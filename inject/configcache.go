package inject

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/cors"
)

// maxCachedConfigs bounds the cache; past it, the cache starts over (deleted PluginConfigs
// would otherwise stay forever).
const maxCachedConfigs = 10000

// configCache keeps compiled PluginConfigs by UID for one resourceVersion, so that a pod
// admission does not decode and compile (regexes included) every config that reaches the pod.
// Any change of a config changes its resourceVersion, so the next admission compiles it again.
// Objects without a UID or resourceVersion (read from files) are compiled every time. The
// compiled policies are shared and only read.
//
// It also keeps the JSON of pod policies (the policy annotation) by which config version
// applies to which port: marshalling normalizes and compiles every config again, and the same
// few policies are written into every pod of a workload.
type configCache struct {
	mu       sync.Mutex
	byUID    map[types.UID]cachedConfig
	compiles int // how many configs were compiled, for tests

	policies map[string]string // policy JSON by "port=uid@resourceVersion;..."
}

type cachedConfig struct {
	resourceVersion string
	policy          *cors.Policy
	err             error
}

// compile returns compileConfig(pc), from the cache when pc's UID and resourceVersion are there.
func (c *configCache) compile(pc *v1alpha1.PluginConfig) (*cors.Policy, error) {
	if pc.UID == "" || pc.ResourceVersion == "" {
		return c.compileNow(pc)
	}
	c.mu.Lock()
	e, ok := c.byUID[pc.UID]
	c.mu.Unlock()
	if ok && e.resourceVersion == pc.ResourceVersion {
		return e.policy, e.err
	}
	pol, err := c.compileNow(pc)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUID == nil || len(c.byUID) >= maxCachedConfigs {
		c.byUID = map[types.UID]cachedConfig{}
	}
	c.byUID[pc.UID] = cachedConfig{resourceVersion: pc.ResourceVersion, policy: pol, err: err}
	return pol, err
}

func (c *configCache) compileNow(pc *v1alpha1.PluginConfig) (*cors.Policy, error) {
	c.mu.Lock()
	c.compiles++
	c.mu.Unlock()
	return compileConfig(pc)
}

// configVersion identifies a PluginConfig's content, "uid@resourceVersion", or "" when it has
// no UID or resourceVersion.
func configVersion(pc *v1alpha1.PluginConfig) string {
	if pc.UID == "" || pc.ResourceVersion == "" {
		return ""
	}
	return string(pc.UID) + "@" + pc.ResourceVersion
}

// policyJSON returns p marshalled, from the cache when key ("" : do not cache) is there.
func (c *configCache) policyJSON(key string, p cors.PodPolicy) (string, error) {
	if key != "" {
		c.mu.Lock()
		js, ok := c.policies[key]
		c.mu.Unlock()
		if ok {
			return js, nil
		}
	}
	raw, err := p.Marshal()
	if err != nil {
		return "", err
	}
	if key != "" {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.policies == nil || len(c.policies) >= maxCachedConfigs {
			c.policies = map[string]string{}
		}
		c.policies[key] = string(raw)
	}
	return string(raw), nil
}
