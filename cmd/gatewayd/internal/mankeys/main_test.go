package main

import (
	"bytes"
	"os"
	"testing"

	"gatewayd/config"
)

const page = "../../../../docs/man/gateway.toml.5"

// TestPageIsGenerated: the key reference checked in is what the schema
// writes, so gateway.toml(5) documents exactly the keys gatewayd check
// accepts, with their defaults.
func TestPageIsGenerated(t *testing.T) {
	old, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := render(config.Keys())
	if err != nil {
		t.Fatal(err)
	}
	want, err := splice(old, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, want) {
		t.Errorf("%s differs from the schema's key reference: run make man and commit the page", page)
	}
}

// TestRender pins the shape: a table's keys declared after its subtables
// stay under it, defaults in bold when they are TOML values, text escaped.
func TestRender(t *testing.T) {
	got, err := render([]config.KeyDoc{
		{Path: "dns", Type: "table", Doc: "The DNS role."},
		{Path: "dns.alias", Type: "string", Doc: "The alias it listens on. Required."},
		{Path: "dns.host[]", Type: "array of tables", Doc: "A local name."},
		{Path: "dns.host[].name", Type: "string", Doc: ".local names, e.g. nas. Required."},
		{Path: "dns.timeout", Type: "duration", Default: `"4s"`, Doc: "The whole-query deadline."},
		{Path: "zone.<name>", Type: "table", Doc: "A zone."},
		{Path: "zone.<name>.allow", Type: "array of strings", Default: "none", Doc: `Services; a \ is literal.`},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `.SS [dns]
The DNS role.
.TP
.BI "alias = " string
The alias it listens on.
Required.
.TP
.BI "timeout = " duration
The whole\-query deadline.
Default: \fB"4s"\fR.
.SS [[dns.host]]
A local name.
.TP
.BI "name = " string
\&.local names, e.g. nas.
Required.
.SS [zone.NAME]
A zone.
.TP
.BI "allow = " "array of strings"
Services; a \e is literal.
Default: none.
`
	if string(got) != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	if _, err := render([]config.KeyDoc{{Path: "dns.alias", Type: "string", Doc: "x"}}); err == nil {
		t.Error("render accepts a key before its table")
	}
	if _, err := render([]config.KeyDoc{{Path: "dns", Type: "table"}}); err == nil {
		t.Error("render accepts a table without a doc")
	}
}
