module github.com/regstore/regstore/server/conformance

go 1.25.0

require (
	github.com/opencontainers/image-spec v1.1.1
	github.com/regstore/regstore v0.0.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/goccy/go-yaml v1.18.0 // indirect
	github.com/opencontainers/distribution-spec/conformance v0.0.0-20260831232431-97274622c111 // indirect
	github.com/opencontainers/distribution-spec/specs-go v0.0.0-20240926185104-8376368dd8aa // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/regstore/regstore => ../..

// The suite is built from the module cache with its own dependencies (see
// conformance_test.go); the tool line keeps it pinned here.
tool github.com/opencontainers/distribution-spec/conformance
