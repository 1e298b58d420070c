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
// remembered. Updates are remembered per object name, since RBAC can grant
// them on named objects only. The file (under --cache-dir) is named by a
// hash of the server and the credentials, and holds no credential.
// Credentials from an exec or auth-provider plugin get no cache: who they
// authenticate as can change with the plugin's own state (a cloud profile, a
// login session) while its configuration stays the same.
type PermissionCache struct {
	file string
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
}

// NewPermissionCache keeps answers for the user config connects as, in
// cacheDir. An empty cacheDir means no cache.
func NewPermissionCache(cacheDir string, config *rest.Config) *PermissionCache {
	if cacheDir == "" || config == nil || config.ExecProvider != nil || config.AuthProvider != nil {
		return nil
	}
	identity, err := identityOf(config)
	if err != nil {
		return nil
	}
	return &PermissionCache{
		file: filepath.Join(cacheDir, "kubectl-canary", "permissions", identity+".json"),
		ttl:  PermissionTTL,
		now:  time.Now,
	}
}

// identityOf fingerprints the server and everything that decides who the
// requests authenticate as, the contents of token and certificate files
// included. A credential that changes (a rotated token) just starts a new,
// empty cache.
func identityOf(config *rest.Config) (string, error) {
	who := struct {
		Host, APIPath, Username, Password, BearerToken string
		TokenFile, CertFile                            string
		CertData                                       []byte
		Impersonate                                    rest.ImpersonationConfig
	}{
		Host: config.Host, APIPath: config.APIPath, Username: config.Username, Password: config.Password,
		BearerToken: config.BearerToken, CertData: config.CertData, Impersonate: config.Impersonate,
	}
	for _, f := range []struct {
		path string
		into *string
	}{{config.BearerTokenFile, &who.TokenFile}, {config.CertFile, &who.CertFile}} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return "", err
		}
		*f.into = string(data)
	}
	data, err := json.Marshal(who)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}

// permissionKey names one permission. name is the object's for updates
// and empty for creates (RBAC cannot grant a create by name).
func permissionKey(verb, resource, namespace, name string) string {
	return verb + " " + resource + " " + namespace + " " + name
}

// Allowed tells whether verb on resource (the object name, if any) in
// namespace was allowed less than the TTL ago.
func (p *PermissionCache) Allowed(verb, resource, namespace, name string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.load()[permissionKey(verb, resource, namespace, name)]
	return ok && p.now().Before(until)
}

// Remember records that verb on resource (the object name, if any) in
// namespace is allowed now.
func (p *PermissionCache) Remember(verb, resource, namespace, name string) {
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
	entries[permissionKey(verb, resource, namespace, name)] = now.Add(p.ttl)
	p.save(entries)
}

// Forget drops every remembered answer of this user: a write was refused,
// so permissions changed. The file is replaced by an empty one the way
// Remember writes it, which works where a file that another command reads
// at that moment cannot be removed (Windows).
func (p *PermissionCache) Forget() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.save(map[string]time.Time{}) {
		os.Remove(p.file)
	}
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
// the same time never read half of it, and says whether it did. Failing to
// remember only costs a question next time.
func (p *PermissionCache) save(entries map[string]time.Time) bool {
	data, err := json.Marshal(entries)
	if err != nil {
		return false
	}
	dir := filepath.Dir(p.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	tmp, err := os.CreateTemp(dir, ".permissions-*")
	if err != nil {
		return false
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return false
	}
	if os.Rename(tmp.Name(), p.file) != nil {
		os.Remove(tmp.Name())
		return false
	}
	return true
}
