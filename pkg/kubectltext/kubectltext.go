// Package kubectltext keeps kubectl's translation catalogs from loading.
//
// Packages of k8s.io/kubectl that the plugin links (its diff, through apply
// and get) translate their own commands' help with i18n.T while the program
// initialises; the first call unpacks and parses every catalog, about 20 ms
// of a start-up that should take 30. The plugin's text is English and none
// of those commands' help is ever shown, so kubectl's strings stay as
// written, which is what their English catalog says anyway.
//
// Go initialises packages in import-path order once their imports are
// ready: this one comes right after k8s.io/kubectl/pkg/util/i18n, before
// any package that calls i18n.T, as SetLoadTranslationsFunc requires.
package kubectltext

import "k8s.io/kubectl/pkg/util/i18n"

func init() {
	if err := i18n.SetLoadTranslationsFunc(func() error { return nil }); err != nil {
		panic("kubectl's translations were loaded before the plugin could skip them: " + err.Error())
	}
}
