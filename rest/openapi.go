package rest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/swaggest/swgui/v5emb"
	"sigs.k8s.io/yaml"
)

// OpenAPIYAML is the contract of the REST door, written first and checked
// against every response the tests receive.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

var openAPIJSON = mustJSON(OpenAPIYAML)

func mustJSON(y []byte) []byte {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		panic(fmt.Sprintf("rest: openapi.yaml is not valid YAML: %v", err))
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		panic(fmt.Sprintf("rest: openapi.yaml: %v", err))
	}
	return j
}

func mountDocs(r chi.Router) {
	r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPIYAML)
	})
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIJSON)
	})
	ui := v5emb.New("incidentd API", "/openapi.json", "/api/docs/")
	r.Get("/api/docs", http.RedirectHandler("/api/docs/", http.StatusMovedPermanently).ServeHTTP)
	r.Handle("/api/docs/*", ui)
	r.Get("/", http.RedirectHandler("/api/docs/", http.StatusFound).ServeHTTP)
}
