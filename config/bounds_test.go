package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// validTOML are documents the TOML library accepts in shapes a careless
// scanner would misread: brackets and quotes inside strings and comments,
// dates with a space, quote runs closing multi-line strings, inline tables
// across lines, trailing commas, CRLF. The prescanner must read each to its
// end: stopping early would let whatever follows reach the library unchecked.
var validTOML = []string{
	"a = 1\n",
	"a = \"[{\" # [[{{\n[b]\nc = '{'\n",
	"d = 1979-05-27 07:32:00Z\ne = [1979-05-27 07:32:00, 1]\nf = 07:32:00\n",
	"s = \"\"\"x\"\"\"\"\"\nt = '''y'''''\nu = \"\"\"\n[not]\n\\\"\"\" x\"\"\"\nv = 1\n",
	"w = '''\n'''\nx = \"\\\\\"\ny = \"\\\"[\"\n",
	"t = { a = 1, b = { c = [1, 2, ], d = 'x' } }\n",
	"t = {\n  a = 1, # one\n  b = 2,\n}\n",
	"a = [\n  1, # c ]\n  [2, 3],\n  { x = \"]\" },\n]\n",
	"[\"a.b\".'c]d'.e]\n\"k\\\"].x\" = 1\n[[ arr ]]\n[[arr]]\nk.l . m = 2\n",
	"a = 1\r\n[b]\r\nc = [\r\n 1,\r\n]\r\n",
	"a = inf\nb = -nan\nc = +1_000\nd = 0xdead_beef\ne = 1e-3\nf = true\ng = []\nh = {}\n",
	"x = " + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "\n",
	"a.b.c.d.e.f.g.h = 1\n[a1.b.c.d.e.f.g.h]\n",
	"k = [" + strings.Repeat("1,", maxEntries) + "]\n",
	"# only a comment",
	"",
}

func TestPrescanReadsTOML(t *testing.T) {
	for _, text := range validTOML {
		var v map[string]any
		if _, err := toml.Decode(text, &v); err != nil {
			t.Fatalf("test document is not TOML: %v\n%s", err, text)
		}
		s := &prescanner{text: []byte(text), tables: map[string]int{}}
		s.run()
		if s.err != nil || s.done {
			t.Errorf("prescan stopped at byte %d (%v) of\n%s", s.i, s.err, text)
		}
	}
}

// boundCases exceed one bound each; the error is placed at the byte where the
// bound is passed.
var boundCases = []struct {
	name, text, want string
}{
	{"inline tables nested too deep", "[dns]\nx = " + strings.Repeat("{a = ", 40),
		"t.toml:2:" + strconv.Itoa(5+5*maxDepth) + ": dns.x: arrays and inline tables are nested more than 16 deep here; no gatewayd setting needs more than 6"},
	{"arrays nested too deep across lines", "a = [\n" + strings.Repeat("  [\n", maxDepth),
		"t.toml:" + strconv.Itoa(maxDepth+1) + ":3: a: arrays and inline tables are nested more than 16 deep here; no gatewayd setting needs more than 6"},
	{"nesting under a dotted key in an inline table", "[[alias]]\nt = {u.v = " + strings.Repeat("[", 50),
		"t.toml:2:" + strconv.Itoa(12+maxDepth-1) + ": alias.t: arrays and inline tables are nested more than 16 deep here; no gatewayd setting needs more than 6"},
	{"too many key parts", "[gateway]\n" + strings.Repeat("a.", 9) + "a = 1\n",
		"t.toml:2:17: gateway: a key or table name has more than 8 dotted parts; no gatewayd key has more than 4"},
	{"too many header parts", "[a . b.c.d.e.f.g.h.\"i\"]\n",
		"t.toml:1:20: a key or table name has more than 8 dotted parts; no gatewayd key has more than 4"},
	{"key too long", "[zone." + strings.Repeat("z", 300) + "]\n",
		"t.toml:1:258: a key or table name is longer than 256 bytes; no gatewayd key is nearly that long"},
	{"quoted key too long", "[gateway]\n\"" + strings.Repeat("k", 300) + "\" = 1\n",
		"t.toml:2:257: gateway: a key or table name is longer than 256 bytes; no gatewayd key is nearly that long"},
	{"array too long", "[dns]\nupstreams = [" + strings.Repeat("\"1.1.1.1\", ", maxEntries) + "\"1.1.1.1\"]\n",
		"t.toml:2:" + strconv.Itoa(14+11*maxEntries) + ": dns.upstreams: an array has more than 10000 elements; gatewayd takes at most 10000 in one list"},
	{"too many tables of one name", strings.Repeat("[[alias]]\n", maxEntries+1),
		"t.toml:10001:1: alias: more than 10000 [[alias]] tables; gatewayd takes at most 10000 in one list"},
	{"inline table too wide", "t = {" + strings.Repeat("k = 1, ", maxEntries) + "z = 1}\n",
		"t.toml:1:" + strconv.Itoa(6+7*maxEntries) + ": t: an inline table has more than 10000 keys; gatewayd takes at most 10000 in one list"},
	{"not UTF-8 after a multi-byte character", "[gateway]\ninterface = \"é\xc3\"\n",
		"t.toml:2:16: the file is not valid UTF-8 text: byte 0xc3 here is not part of a UTF-8 character; save the file as UTF-8"},
}

func TestBounds(t *testing.T) {
	for _, tc := range boundCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.text)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestFileSize(t *testing.T) {
	// The limit itself is accepted as far as size goes.
	text := bytes.Repeat([]byte("#\n"), MaxFileSize/2)
	if err := checkText("t.toml", text); err != nil {
		t.Errorf("a file of exactly MaxFileSize refused: %v", err)
	}
	text = append(text, '#')
	want := fmt.Sprintf("t.toml:%d:1: the file is larger than 4194304 bytes (4 MiB), the most gatewayd reads; a site file is a few kilobytes", MaxFileSize/2+1)
	if _, err := parse(string(text)); err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	// Load reads no more than it needs to refuse a huge file.
	path := filepath.Join(t.TempDir(), "huge.toml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil { // sparse: no disk used
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	f.Close()
	_, err = Load(path)
	var list ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "larger than 4194304 bytes") {
		t.Errorf("Load of a 1 TiB file: %v", err)
	}
}

// bombs are hostile files the checker must refuse in bounded memory. Without
// the prescan the library takes about 689 MB for the 16 KB one.
var bombs = map[string]func() []byte{
	"inline tables 16 KB":  func() []byte { return cat("a = ", strings.Repeat("{a=", 16<<10/3)) },
	"inline tables 200 KB": func() []byte { return cat("a = ", strings.Repeat("{a=", 200<<10/3)) },
	"arrays at the size limit": func() []byte {
		b := bytes.Repeat([]byte("["), MaxFileSize)
		copy(b, "a = ")
		return b
	},
	"mixed in a table 1 MB": func() []byte { return cat("[[alias]]\nx = ", strings.Repeat("[{a=", 1<<20/4)) },
	"dotted keys 1 MB":      func() []byte { return cat(strings.Repeat("a.", 1<<19), "a = 1\n") },
	// 16 KB nested as deep as allowed reaches the library, and costs little.
	"deepest allowed 16 KB": func() []byte {
		var b strings.Builder
		for i := 0; b.Len() < 16<<10; i++ {
			fmt.Fprintf(&b, "a%d = %s1%s\n", i, strings.Repeat("{a=", maxDepth), strings.Repeat("}", maxDepth))
		}
		return []byte(b.String())
	},
}

func cat(s ...string) []byte { return []byte(strings.Join(s, "")) }

const bombEnv = "GATEWAYD_CONFIG_BOMB"

// TestNestingBombBoundedMemory parses each bomb in a child process of its
// own (this test binary again) and reads the child's peak resident memory.
func TestNestingBombBoundedMemory(t *testing.T) {
	if name := os.Getenv(bombEnv); name != "" {
		bombChild(name)
		return
	}
	for name := range bombs {
		t.Run(name, func(t *testing.T) {
			kb := childPeakRSS(t, name)
			if kb > 64<<10 {
				t.Errorf("checking the bomb took %d KiB at peak; want under 64 MiB", kb)
			}
		})
	}
	// The measure itself: the library alone, given 5 KB of the same bomb,
	// goes far past the bound.
	t.Run("control", func(t *testing.T) {
		if kb := childPeakRSS(t, controlBomb); kb < 64<<10 {
			t.Errorf("the library alone took only %d KiB at peak on the control bomb: the measure sees nothing", kb)
		}
	})
}

const controlBomb = "control: the library alone"

// childPeakRSS runs one bomb in a child process and returns its VmHWM.
func childPeakRSS(t *testing.T, name string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNestingBombBoundedMemory$", "-test.count=1")
	cmd.Env = append(os.Environ(), bombEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	kb := -1
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "peak-rss-kb "); ok {
			kb, _ = strconv.Atoi(v)
		}
		if strings.HasPrefix(line, "refused: ") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if kb < 0 {
		t.Fatalf("child printed no peak RSS:\n%s", out)
	}
	t.Logf("peak RSS %d KiB", kb)
	return kb
}

// bombChild parses one bomb and prints the verdict and VmHWM.
func bombChild(name string) {
	var err error
	if name == controlBomb {
		var v map[string]any
		_, err = toml.Decode("a = "+strings.Repeat("{a=", 5<<10/3), &v)
	} else {
		_, err = Parse("bomb.toml", bombs[name]())
	}
	if err == nil {
		fmt.Println("accepted")
		os.Exit(1)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	fmt.Println("refused:", msg[:min(len(msg), 200)])
	f, ferr := os.Open("/proc/self/status")
	if ferr != nil {
		fmt.Println(ferr)
		os.Exit(1)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fmt.Println("peak-rss-kb", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

// FuzzPrescan: the prescanner never panics, places its verdict inside the
// text, and never stops early on text the TOML library accepts (whatever
// followed would reach the library unmeasured).
func FuzzPrescan(f *testing.F) {
	for _, text := range append(append(validTOML, trickySeeds...), baseDoc, "a = [{b = [1]}, 2]\n", "x = {y = \"\"\"\n\"\"\"}\n") {
		if len(text) < 4096 {
			f.Add([]byte(text))
		}
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		if invalidUTF8(text) >= 0 {
			return // refused before the scan
		}
		s := &prescanner{text: text, tables: map[string]int{}}
		s.run()
		if s.err != nil {
			if s.err.off < 0 || s.err.off > len(text) {
				t.Fatalf("verdict at byte %d of %d", s.err.off, len(text))
			}
			return
		}
		if !s.done {
			return
		}
		var v map[string]any
		if _, err := toml.Decode(string(text), &v); err == nil {
			t.Fatalf("prescan stopped at byte %d of TOML the library accepts:\n%q", s.i, text)
		}
	})
}

// TestProblemCap: a file with thousands of problems gets the first 20 in
// file order and a count of the rest, without placing each.
func TestProblemCap(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "k%d = 1\n", i)
	}
	list := problemsIn(t, baseDoc+"\n[dns.cache]\n"+b.String())
	if len(list) != maxReported+1 {
		t.Fatalf("%d problems listed, want %d", len(list), maxReported+1)
	}
	if got, want := list[0].Error(), `t.toml:56:1: dns.cache.k0: unknown key "k0" in [dns.cache]; valid keys are: max_ttl, min_ttl, negative_ttl, serve_stale, size, stale_answer_after`; got != want {
		t.Errorf("first: got %s\nwant %s", got, want)
	}
	if got, want := list[maxReported].Error(), "t.toml:76:1: and 4980 more problems; fix these first"; got != want {
		t.Errorf("last: got %s\nwant %s", got, want)
	}

	// Semantic problems too: 3000 unknown services, each placed in its array.
	list = problemsIn(t, edit(t, baseDoc, `allow = ["dns"]`, "allow = ["+strings.Repeat(`"web", `, 3000)+"]"))
	if got, want := list[maxReported].Error(), "t.toml:52:"+strconv.Itoa(10+7*maxReported)+": and 2980 more problems; fix these first"; got != want {
		t.Errorf("last: got %s\nwant %s", got, want)
	}
}
