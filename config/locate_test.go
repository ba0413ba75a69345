package config

import "testing"

// The locator reads key positions itself; these are the shapes that could
// mislead a line-by-line reader.
func TestLocator(t *testing.T) {
	text := `top = 1  # [not.a.table]
[a]
  b = """
[not.a.table]
c = "in a string"
"""
  d = [
    ["nested", "x = 1"],
    { e = 1 },  # ]
  ]
[[arr]]
k = 'lit'
[[arr]]
k = '''
[[arr]]
'''
[arr.sub]
"quoted.key" = 2
dotted.key = 3
[a.'odd key']
z = 1` + "\r\n" + `y = 2`
	l := newLocator(text)
	for _, tc := range []struct {
		path string
		want position
	}{
		{"top", position{1, 1}},
		{"a", position{2, 1}},
		{"a.b", position{3, 3}},
		{"a.d", position{7, 3}},
		{"arr[0]", position{11, 1}},
		{"arr[0].k", position{12, 1}},
		{"arr[1]", position{13, 1}},
		{"arr[1].k", position{14, 1}},
		{"arr[1].sub", position{17, 1}},
		{"arr[1].sub.quoted.key", position{18, 1}},
		{"arr[1].sub.dotted.key", position{19, 1}},
		{"a.odd key.z", position{21, 1}},
		{"a.odd key.y", position{22, 1}},
		{"a.odd key.missing", position{20, 1}}, // the nearest recorded ancestor
		{"nowhere", position{1, 1}},
	} {
		if got := l.find(tc.path); got != tc.want {
			t.Errorf("find(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"not.a.table", "c", "arr[2]", "e"} {
		if _, ok := l.pos[bad]; ok {
			t.Errorf("recorded %q from inside a value", bad)
		}
	}
	for _, tc := range []struct {
		path string
		n    int
		want position
	}{
		{"a.d", 0, position{8, 5}},
		{"a.d", 1, position{9, 5}},
		{"a.d", 2, position{7, 3}}, // no such element: the key
		{"top", 0, position{1, 1}}, // not an array: the key
	} {
		if got := l.findElement(tc.path, tc.n); got != tc.want {
			t.Errorf("findElement(%q, %d) = %v, want %v", tc.path, tc.n, got, tc.want)
		}
	}
	if got := l.keyOnLine(14); got != "arr[1].k" {
		t.Errorf("keyOnLine(14) = %q", got)
	}
	if got := l.offset(len("top = 1  # [not.a.table]\n[a]")); got != (position{2, 4}) {
		t.Errorf("offset = %v, want 2:4", got)
	}
}
