// Package security holds ytcaption's attack tests: each one builds the real
// binaries, runs them in the production topology (ytcaption-core serve on
// PostgreSQL and MinIO, ytcaption-edge on Redis, a gpu-node; private URLs not
// allowed) and throws one class of attack at a door from outside — inflated
// bodies, addresses that lead inside, files that lie, names that are paths,
// floods of made-up keys, open redirects — then checks that the door held.
// docs/security.md maps each class to its test. There is no non-test code
// here.
package security
