package routing

// backend is what the planner needs of one routing API. The planner decides
// everything the API does not: the versions behind the Service, which one
// is stable and which the canary, the weight, the canary's recorded state
// and its phases. The backend reads and shapes the API's routing objects.
//
// Istio's (VirtualServices and DestinationRules, istio_*.go) and the
// Kubernetes Gateway API's (routes whose backendRefs are weighted between
// a Service per version, gatewayapi_*.go) implement it; newPlanner picks
// one by the canary recorded in the Snapshot, else by ChooseRoutingAPI.
type backend interface {
	// objects are the routing objects being planned, those whose recorded
	// state speaks for the canary first.
	objects() []*object
	// prepareStart finds, or plans, the object that names the versions
	// start routes to (Istio: the DestinationRule and its subsets), or says
	// why there is none start can use.
	prepareStart() error
	// routedVersions are the versions the live routes send the Service's
	// traffic to, sorted, none when they name none; start takes the one as
	// the stable version, or of two the one that is not the canary asked
	// for. It follows prepareStart.
	routedVersions(versions *Versions) []string
	// startCanary names base.Stable and base.Canary in the API (the
	// subsets), splits the Service's routes between them at the intent's
	// weight, adds the extras base asks for (match rules, sticky, mirror)
	// and records the canary on every object it writes. It returns the
	// canary's state as its first routing object records it.
	startCanary(base State, versions *Versions) (*State, error)
	// setCanaryWeight moves the running canary to the intent's weight and
	// mirror; nil when no object carries it.
	setCanaryWeight(active *State) (*State, error)
	// setCanaryMatches gives the running canary the intent's match rules;
	// nil when no object carries it.
	setCanaryMatches() (*State, error)
	// endCanary sends all traffic to the version phase keeps (stable on
	// abort, canary on promote) and takes back what start added.
	endCanary(phase Phase) (*State, error)
	// check adds the preflight findings about the Service and its routing
	// objects.
	check(c *checker, opts CheckOptions)
}
