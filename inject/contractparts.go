package inject

import (
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// maxCachedPortSets bounds the contract parts kept per redirect-ports value; past it, the
// cache starts over. A cluster has a few such values (one per kind of workload).
const maxCachedPortSets = 1024

// contractParts keeps the containers and the volume an injection adds, with their JSON, per
// redirect-ports value and upstream timeout: they depend on nothing else (the Injector's
// settings are fixed), and
// the admission handler writes them into every patch, so each set is built and encoded once
// instead of per pod. The parts are shared by every Changes of those ports and only read.
type contractParts struct {
	mu      sync.RWMutex
	byPorts map[partsKey]*podParts
}

// podParts are the containers and volumes of Changes, and their JSON element by element.
type podParts struct {
	initContainers []corev1.Container
	volumes        []corev1.Volume
	initJSON       [][]byte
	volumesJSON    [][]byte
}

// partsKey is what the parts depend on besides the settings.
type partsKey struct{ redirect, upstreamTimeout string }

// forPorts returns the parts for the redirect ports (redirect is their port-list value) and the
// sidecar's upstream timeout (empty: its default).
func (c *contractParts) forPorts(in *Injector, ports []int32, redirect, upstreamTimeout string) (*podParts, error) {
	key := partsKey{redirect, upstreamTimeout}
	c.mu.RLock()
	p, ok := c.byPorts[key]
	c.mu.RUnlock()
	if ok {
		return p, nil
	}
	p = &podParts{volumes: []corev1.Volume{in.policyVolume()}}
	if len(ports) > 0 && in.settings.RedirectMode != RedirectCNI {
		p.initContainers = append(p.initContainers, in.initContainer(ports))
	}
	p.initContainers = append(p.initContainers, in.cniValidated(in.sidecarContainer(upstreamTimeout), ports))
	var err error
	if p.initJSON, err = encodeEach(p.initContainers); err != nil {
		return nil, fmt.Errorf("encoding the injected containers: %w", err)
	}
	if p.volumesJSON, err = encodeEach(p.volumes); err != nil {
		return nil, fmt.Errorf("encoding the injected volume: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPorts == nil || len(c.byPorts) >= maxCachedPortSets {
		c.byPorts = map[partsKey]*podParts{}
	}
	c.byPorts[key] = p
	return p, nil
}

func encodeEach[T any](items []T) ([][]byte, error) {
	out := make([][]byte, len(items))
	for i := range items {
		b, err := json.Marshal(&items[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// encodedOr returns enc when it encodes items (Changes an Injector made), else items encoded
// now (Changes put together by hand).
func encodedOr[T any](enc [][]byte, items []T) ([][]byte, error) {
	if enc != nil && len(enc) == len(items) {
		return enc, nil
	}
	return encodeEach(items)
}
