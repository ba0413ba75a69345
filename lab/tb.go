package lab

// TB is the part of testing.TB the lab's test helpers use. lab takes it
// instead of testing.TB so that `gatewayd demo`, which links lab, does not
// link the testing package into the production binary; *testing.T and
// *testing.B satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Log(args ...any)
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Failed() bool
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}
