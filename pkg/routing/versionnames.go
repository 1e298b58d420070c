package routing

// VersionNames are the versions behind the Service of snap, told apart as
// start tells them (by versionLabel, or the label it infers), for the
// command line to offer as --canary and --stable.
func VersionNames(snap Snapshot, versionLabel string) ([]string, error) {
	deployments, err := backingDeployments(snap.Service, snap.Deployments)
	if err != nil {
		return nil, err
	}
	versions, err := inferVersions(snap.Service, deployments, versionLabel)
	if err != nil {
		return nil, err
	}
	return versions.Values(), nil
}
