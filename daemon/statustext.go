package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteStatus renders a status as text; raw is the same status as JSON, used
// to print each role's own section without this package knowing its shape.
func WriteStatus(out io.Writer, st Status, raw json.RawMessage) {
	fmt.Fprintf(out, "host %s, interface %s, config %s (generation %d, applied %s)\n\n",
		st.Host, st.Interface, st.Config, st.Generation, st.Applied.Format("2006-01-02 15:04:05"))
	if st.Degraded != "" {
		fmt.Fprintf(out, "DEGRADED: %s\n\n", st.Degraded)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tADDRESS\tLABEL\tSTATE")
	for _, a := range st.Aliases {
		state := "up"
		switch {
		case !a.Held:
			state = "held by " + a.Host
		case a.Conflict != "":
			state = "conflict: " + a.Conflict
		case !a.Present:
			state = "missing"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Address, a.Label, state)
	}
	tw.Flush()
	var generic struct {
		Roles map[string]any `json:"roles"`
	}
	_ = json.Unmarshal(raw, &generic)
	for _, name := range sortedNames(generic.Roles) {
		fmt.Fprintf(out, "\n%s:\n", name)
		writeValue(out, generic.Roles[name], "  ")
	}
}

func sortedNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// writeValue prints decoded JSON as indented "key: value" lines.
func writeValue(out io.Writer, v any, indent string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedNames(v) {
			switch child := v[k].(type) {
			case map[string]any, []any:
				if isEmpty(child) {
					continue
				}
				fmt.Fprintf(out, "%s%s:\n", indent, k)
				writeValue(out, child, indent+"  ")
			default:
				fmt.Fprintf(out, "%s%s: %s\n", indent, k, scalar(child))
			}
		}
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				parts := flatten("", m, nil)
				fmt.Fprintf(out, "%s- %s\n", indent, strings.Join(parts, " "))
			} else {
				fmt.Fprintf(out, "%s- %s\n", indent, scalar(e))
			}
		}
	default:
		fmt.Fprintf(out, "%s%s\n", indent, scalar(v))
	}
}

// flatten renders a map as "key=value" pairs, nested keys joined with dots.
func flatten(prefix string, m map[string]any, out []string) []string {
	for _, k := range sortedNames(m) {
		if child, ok := m[k].(map[string]any); ok {
			out = flatten(prefix+k+".", child, out)
			continue
		}
		out = append(out, prefix+k+"="+scalar(m[k]))
	}
	return out
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case float64:
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%g", v)
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
