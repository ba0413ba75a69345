package config

import (
	"net/netip"
	"reflect"
)

// KeyDoc documents one key of the file, or one table, for the man page and
// any other reference that must not drift from the schema.
type KeyDoc struct {
	// Path is the key as the file nests it: "dhcp.pool[].option[].always".
	// "[]" marks a list of tables ([[dhcp.pool]]), "<name>" a table named by
	// the file ("zone.<name>.allow").
	Path string
	// Type is what the value is: "string", "boolean", "integer", "duration",
	// "address", "address/length", "address:port", "address range", "MAC
	// address", "array of strings", "array of addresses", "array of
	// subnets"; "table" or "array of tables" for a table.
	Type string
	// Default is what leaving the key out means: a TOML value when it is one
	// (`"500ms"`, `true`, `["ssh", "ping"]`), else words ("the hostname",
	// "off"); empty for a required key and for a table.
	Default string
	// Doc says what the key is for, in a sentence or two.
	Doc string
}

// Keys lists every table and key of the file in schema order, each table
// before its keys, from the schema's struct tags (doc, default).
func Keys() []KeyDoc {
	var out []KeyDoc
	keyDocs(reflect.TypeFor[file](), "", &out)
	return out
}

func keyDocs(t reflect.Type, prefix string, out *[]KeyDoc) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		path, ft := join(prefix, tag), f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		doc := KeyDoc{Path: path, Default: f.Tag.Get("default"), Doc: f.Tag.Get("doc")}
		switch {
		case isText(ft):
			doc.Type = keyType(ft)
			*out = append(*out, doc)
		case ft.Kind() == reflect.Map:
			doc.Path, doc.Type = path+".<name>", "table"
			*out = append(*out, doc)
			keyDocs(deref(ft.Elem()), doc.Path, out)
		case ft.Kind() == reflect.Struct:
			doc.Type = "table"
			*out = append(*out, doc)
			keyDocs(ft, path, out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isText(ft.Elem()):
			doc.Path, doc.Type = path+"[]", "array of tables"
			*out = append(*out, doc)
			keyDocs(ft.Elem(), doc.Path, out)
		default:
			doc.Type = keyType(ft)
			*out = append(*out, doc)
		}
	}
}

// keyType names a value's type as the key list writes it.
func keyType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[duration]():
		return "duration"
	case reflect.TypeFor[netip.Addr]():
		return "address"
	case reflect.TypeFor[netip.Prefix]():
		return "address/length"
	case reflect.TypeFor[netip.AddrPort]():
		return "address:port"
	case reflect.TypeFor[Range]():
		return "address range"
	case reflect.TypeFor[mac]():
		return "MAC address"
	case reflect.TypeFor[[]netip.Addr]():
		return "array of addresses"
	case reflect.TypeFor[[]netip.Prefix]():
		return "array of subnets"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int:
		return "integer"
	case reflect.Slice:
		return "array of " + keyType(t.Elem()) + "s"
	}
	return t.String()
}
