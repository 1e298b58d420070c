package kube

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestPermissionCacheRemembersForTheTTL(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cache := NewPermissionCache(dir, &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "secret-token"})
	cache.now = func() time.Time { return now }

	assert.False(t, cache.Allowed("update", "destinationrules", "shop", "reviews"))
	cache.Remember("update", "destinationrules", "shop", "reviews")
	assert.True(t, cache.Allowed("update", "destinationrules", "shop", "reviews"))
	assert.False(t, cache.Allowed("update", "destinationrules", "shop", "ratings"), "another object: RBAC can grant by name")
	assert.False(t, cache.Allowed("create", "destinationrules", "shop", ""), "another verb")
	assert.False(t, cache.Allowed("update", "virtualservices", "shop", "reviews"), "another resource")
	assert.False(t, cache.Allowed("update", "destinationrules", "other", "reviews"), "another namespace")

	// Another process (a later command) reads the same file.
	later := NewPermissionCache(dir, &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "secret-token"})
	later.now = func() time.Time { return now.Add(PermissionTTL - time.Second) }
	assert.True(t, later.Allowed("update", "destinationrules", "shop", "reviews"))
	later.now = func() time.Time { return now.Add(PermissionTTL) }
	assert.False(t, later.Allowed("update", "destinationrules", "shop", "reviews"), "expired")

	// Expired entries go when the file is next written.
	later.Remember("create", "virtualservices", "shop", "")
	data, err := os.ReadFile(cache.file)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "destinationrules")
	assert.NotContains(t, string(data), "secret-token")
	if runtime.GOOS != "windows" {
		info, err := os.Stat(cache.file)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}

	later.Forget()
	assert.False(t, later.Allowed("create", "virtualservices", "shop", ""))
	data, err = os.ReadFile(cache.file)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(data), "forgetting leaves an empty cache")
}

func TestPermissionCacheIsPerServerAndUser(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-a"), 0o600))
	base := rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "a", BearerTokenFile: tokenFile}
	NewPermissionCache(dir, &base).Remember("update", "virtualservices", "shop", "reviews")
	assert.True(t, NewPermissionCache(dir, &base).Allowed("update", "virtualservices", "shop", "reviews"))

	others := map[string]func(*rest.Config){
		"server":             func(c *rest.Config) { c.Host = "https://127.0.0.1:7443" },
		"token":              func(c *rest.Config) { c.BearerToken = "b" },
		"client cert":        func(c *rest.Config) { c.CertData = []byte("cert") },
		"impersonated user":  func(c *rest.Config) { c.Impersonate.UserName = "jane" },
		"impersonated group": func(c *rest.Config) { c.Impersonate.Groups = []string{"admins"} },
		"basic auth":         func(c *rest.Config) { c.Username, c.Password = "jane", "pw" },
	}
	for name, change := range others {
		c := base
		change(&c)
		assert.False(t, NewPermissionCache(dir, &c).Allowed("update", "virtualservices", "shop", "reviews"), name)
	}

	// The same token file with another token in it is another identity.
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-b"), 0o600))
	assert.False(t, NewPermissionCache(dir, &base).Allowed("update", "virtualservices", "shop", "reviews"), "rotated token file")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-a"), 0o600))
	assert.True(t, NewPermissionCache(dir, &base).Allowed("update", "virtualservices", "shop", "reviews"))
}

func TestPermissionCacheOff(t *testing.T) {
	var none *PermissionCache
	assert.Nil(t, NewPermissionCache("", &rest.Config{Host: "h"}))
	none.Remember("update", "virtualservices", "shop", "reviews")
	none.Forget()
	assert.False(t, none.Allowed("update", "virtualservices", "shop", "reviews"))

	// Plugins decide who they authenticate as from state of their own.
	assert.Nil(t, NewPermissionCache(t.TempDir(), &rest.Config{Host: "h", ExecProvider: &clientcmdapi.ExecConfig{Command: "aws"}}), "exec plugin")
	assert.Nil(t, NewPermissionCache(t.TempDir(), &rest.Config{Host: "h", AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}), "auth provider")
	// A credential file that cannot be read cannot be told apart.
	assert.Nil(t, NewPermissionCache(t.TempDir(), &rest.Config{Host: "h", TLSClientConfig: rest.TLSClientConfig{CertFile: filepath.Join(t.TempDir(), "missing.crt")}}))

	// A cache file that is not valid is an empty cache, not an error.
	dir := t.TempDir()
	cache := NewPermissionCache(dir, &rest.Config{Host: "h"})
	require.NoError(t, os.MkdirAll(filepath.Dir(cache.file), 0o700))
	require.NoError(t, os.WriteFile(cache.file, []byte("not json"), 0o600))
	assert.False(t, cache.Allowed("update", "virtualservices", "shop", "reviews"))
	cache.Remember("update", "virtualservices", "shop", "reviews")
	assert.True(t, cache.Allowed("update", "virtualservices", "shop", "reviews"))
}
