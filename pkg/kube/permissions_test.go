package kube

import (
	"os"
	"path/filepath"
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

	assert.False(t, cache.Allowed("update", "destinationrules", "shop"))
	cache.Remember("update", "destinationrules", "shop")
	assert.True(t, cache.Allowed("update", "destinationrules", "shop"))
	assert.False(t, cache.Allowed("create", "destinationrules", "shop"), "another verb")
	assert.False(t, cache.Allowed("update", "virtualservices", "shop"), "another resource")
	assert.False(t, cache.Allowed("update", "destinationrules", "other"), "another namespace")

	// Another process (a later command) reads the same file.
	later := NewPermissionCache(dir, &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "secret-token"})
	later.now = func() time.Time { return now.Add(PermissionTTL - time.Second) }
	assert.True(t, later.Allowed("update", "destinationrules", "shop"))
	later.now = func() time.Time { return now.Add(PermissionTTL) }
	assert.False(t, later.Allowed("update", "destinationrules", "shop"), "expired")

	// Expired entries go when the file is next written.
	later.Remember("update", "virtualservices", "shop")
	data, err := os.ReadFile(cache.file)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "destinationrules")
	assert.NotContains(t, string(data), "secret-token")
	info, err := os.Stat(cache.file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	later.Forget()
	assert.False(t, later.Allowed("update", "virtualservices", "shop"))
	_, err = os.Stat(cache.file)
	assert.True(t, os.IsNotExist(err))
}

func TestPermissionCacheIsPerServerAndUser(t *testing.T) {
	dir := t.TempDir()
	base := rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "a"}
	NewPermissionCache(dir, &base).Remember("update", "virtualservices", "shop")
	assert.True(t, NewPermissionCache(dir, &base).Allowed("update", "virtualservices", "shop"))

	others := map[string]func(*rest.Config){
		"server":            func(c *rest.Config) { c.Host = "https://127.0.0.1:7443" },
		"token":             func(c *rest.Config) { c.BearerToken = "b" },
		"token file":        func(c *rest.Config) { c.BearerTokenFile = "/var/run/token" },
		"client cert":       func(c *rest.Config) { c.CertData = []byte("cert") },
		"impersonated user": func(c *rest.Config) { c.Impersonate.UserName = "jane" },
		"impersonated group": func(c *rest.Config) {
			c.Impersonate.Groups = []string{"admins"}
		},
		"exec plugin": func(c *rest.Config) {
			c.ExecProvider = &clientcmdapi.ExecConfig{Command: "get-token", Args: []string{"--user", "jane"}}
		},
		"auth provider": func(c *rest.Config) {
			c.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"client-id": "x"}}
		},
	}
	for name, change := range others {
		c := base
		change(&c)
		assert.False(t, NewPermissionCache(dir, &c).Allowed("update", "virtualservices", "shop"), name)
	}
}

func TestPermissionCacheOff(t *testing.T) {
	var none *PermissionCache
	assert.Nil(t, NewPermissionCache("", &rest.Config{Host: "h"}))
	none.Remember("update", "virtualservices", "shop")
	none.Forget()
	assert.False(t, none.Allowed("update", "virtualservices", "shop"))

	// A cache file that is not ours to read is an empty cache, not an error.
	dir := t.TempDir()
	cache := NewPermissionCache(dir, &rest.Config{Host: "h"})
	require.NoError(t, os.MkdirAll(filepath.Dir(cache.file), 0o700))
	require.NoError(t, os.WriteFile(cache.file, []byte("not json"), 0o600))
	assert.False(t, cache.Allowed("update", "virtualservices", "shop"))
	cache.Remember("update", "virtualservices", "shop")
	assert.True(t, cache.Allowed("update", "virtualservices", "shop"))
}
