// Package canary is the application layer between the commands and the
// cluster: one Engine carries every routing change through read, plan,
// check, authorise, server dry run, write and retry, against a Store that
// says where the objects live (the live cluster today). Around it are the
// pieces the commands share: waiting for istiod's proxies (an Observer of
// the engine), judging a canary by its metrics, the step table of `run`,
// and the read-only views of status, check and completion.
//
// Commands give it their parsed flags and print what it returns; it never
// parses a flag and prints only through the callbacks it is given.
package canary
