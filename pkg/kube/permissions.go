package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// PermissionTTL is how long an answer that a write is allowed is trusted.
const PermissionTTL = 5 * time.Minute

// PermissionCache remembers, for PermissionTTL, the writes the API server
// let this user do: answers to SelfSubjectAccessReviews and writes (server
// dry runs included) that went through. Commands that write two objects ask
// before the first write whether the second is allowed; with the answer
// remembered, an abort run minutes after a start or another abort costs no
// extra round trip, the way kubectl's discovery cache spares it discovery.
// Only "allowed" is remembered, so a permission granted counts at once; one
// revoked within the TTL shows as a refused write, which forgets everything
// remembered. The file (under --cache-dir) is named by a hash of the server
// and the credentials, and holds no credential.
type PermissionCache struct {
	file string
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
}

// NewPermissionCache keeps answers for the user config connects as, in
// cacheDir. An empty cacheDir means no cache.
func NewPermissionCache(cacheDir string, config *rest.Config) *PermissionCache {
	if cacheDir == "" || config == nil {
		return nil
	}
	return &PermissionCache{
		file: filepath.Join(cacheDir, "kubectl-canary", "permissions", identityOf(config)+".json"),
		ttl:  PermissionTTL,
		now:  time.Now,
	}
}

// identityOf fingerprints the server and everything that decides who the
// requests authenticate as. A credential that changes (a refreshed token)
// just starts a new, empty cache.
func identityOf(config *rest.Config) string {
	who := struct {
		Host, APIPath, Username, Password, BearerToken, BearerTokenFile string
		CertFile, CertData                                              string
		Impersonate                                                     rest.ImpersonationConfig
		AuthProvider                                                    string
		AuthProviderConfig                                              map[string]string
		ExecCommand                                                     string
		ExecArgs                                                        []string
		ExecEnv                                                         map[string]string
	}{
		Host: config.Host, APIPath: config.APIPath, Username: config.Username, Password: config.Password,
		BearerToken: config.BearerToken, BearerTokenFile: config.BearerTokenFile,
		CertFile: config.CertFile, CertData: string(config.CertData), Impersonate: config.Impersonate,
	}
	if p := config.AuthProvider; p != nil {
		who.AuthProvider, who.AuthProviderConfig = p.Name, p.Config
	}
	if e := config.ExecProvider; e != nil {
		who.ExecCommand, who.ExecArgs = e.Command, e.Args
		who.ExecEnv = map[string]string{}
		for _, v := range e.Env {
			who.ExecEnv[v.Name] = v.Value
		}
	}
	data, _ := json.Marshal(who)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func permissionKey(verb, resource, namespace string) string {
	return verb + " " + resource + " " + namespace
}

// Allowed tells whether verb on resource in namespace was allowed less than
// the TTL ago.
func (p *PermissionCache) Allowed(verb, resource, namespace string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.load()[permissionKey(verb, resource, namespace)]
	return ok && p.now().Before(until)
}

// Remember records that verb on resource in namespace is allowed now.
func (p *PermissionCache) Remember(verb, resource, namespace string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	entries := p.load()
	now := p.now()
	for key, until := range entries {
		if !now.Before(until) {
			delete(entries, key)
		}
	}
	entries[permissionKey(verb, resource, namespace)] = now.Add(p.ttl)
	p.save(entries)
}

// Forget drops every remembered answer of this user: a write was refused,
// so permissions changed.
func (p *PermissionCache) Forget() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	os.Remove(p.file)
}

// load reads the file; a missing or unreadable one is an empty cache.
func (p *PermissionCache) load() map[string]time.Time {
	entries := map[string]time.Time{}
	if data, err := os.ReadFile(p.file); err == nil {
		if json.Unmarshal(data, &entries) != nil {
			return map[string]time.Time{}
		}
	}
	return entries
}

// save writes the file whole, through a rename, so that commands running at
// the same time never read half of it. Failing to save only costs a question
// next time.
func (p *PermissionCache) save(entries map[string]time.Time) {
	data, err := json.Marshal(entries)
	if err != nil {
		return
	}
	dir := filepath.Dir(p.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".permissions-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), p.file) != nil {
		os.Remove(tmp.Name())
	}
}
