// Command porcupine-driver times Porcupine (github.com/anishathalye/porcupine, a Go
// linearizability checker) on history files in this repository's JSON-lines format, so that
// `cargo xtask bench` can compare our checker (sim/src/linearizability.rs) against Porcupine on
// the same files. It is a comparison harness only: none of Porcupine's code is copied here or
// into our checker; this program just calls Porcupine's public API. Porcupine's checkout is not
// part of this repository; scripts/porcupine.sh builds this driver against a local checkout.
//
// Usage:
//
//	porcupine-driver [--timeout-s N] FILE...
//
// For each FILE it prints one line, FILE<TAB>VERDICT<TAB>MILLISECONDS, where VERDICT is
// "linearizable", "not-linearizable" or "unknown" (Porcupine's timeout expired first) and
// MILLISECONDS is the wall time of the check alone (Porcupine's call, including its call of our
// Partition function; not reading or parsing the file), as a decimal. N is in seconds (fractions
// allowed); 0, the default, means no timeout. A file that cannot be read or parsed stops the run
// with a message on stderr and exit status 2. Porcupine checks partitions (keys) on parallel
// goroutines; set GOMAXPROCS=1 to confine it to one core.
//
// The history format: one JSON object per line, blank lines ignored, for example
//
//	{"process": 0, "f": "write", "value": "4", "type": "ok", "invoke_ns": 100, "complete_ns": 250}
//	{"process": 1, "f": "read", "output": null, "type": "ok", "invoke_ns": 120, "complete_ns": 300}
//	{"process": 2, "f": "cas", "value": ["1", "4"], "type": "ok", "invoke_ns": 130, "complete_ns": 310}
//	{"process": 2, "f": "cas", "value": ["1", "4"], "type": "ok",
//	    "output": {"applied": false, "previous": "2"}, "invoke_ns": 400, "complete_ns": 410}
//	{"process": 3, "f": "write", "value": "5", "type": "info", "invoke_ns": 400}
//	{"process": 0, "f": "append", "key": "k1", "value": "y", "type": "ok", ...}
//
// Values are JSON strings or null (null: absent). "key" is optional (absent: the one register,
// a partition of its own, distinct from every keyed one). f is read/write/cas (register) or
// get/put/append (key-value); read=get, write=put. Type "ok" completed with the given output,
// "fail" did not happen (dropped), "info" has an unknown outcome (see stepModel).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// val is an optional string: what a register or key holds, an argument, or a result.
// Invariant: an absent val has s == "", so == compares two vals correctly.
type val struct {
	present bool
	s       string
}

var absent = val{}

func (v val) String() string {
	if !v.present {
		return "nil"
	}
	return fmt.Sprintf("%q", v.s)
}

type opKind uint8

const (
	opRead   opKind = iota // read / get
	opWrite                // write / put
	opCas                  // cas [expected, new]
	opAppend               // append
)

// partKey names a partition: the unkeyed register, or one key.
type partKey struct {
	keyed bool
	key   string
}

// input is an Operation's Input (always a *input).
type input struct {
	part partKey
	kind opKind
	arg  val // write/append: the value; cas: expected
	arg2 val // cas: new
}

// output is an Operation's Output (always a *output).
type output struct {
	unknown bool // an "info" op: the outcome is unconstrained
	value   val  // read: the value returned
	// cas: whether it applied, and (if hasPrev) the value it saw.
	applied bool
	hasPrev bool
	prev    val
}

// stepModel is the sequential specification of one register / key. The state is a val.
//
// Info ops: Porcupine has no notion of an operation that may never take effect; every operation
// must be linearized somewhere in [Call, Return]. The driver gives an info op Return =
// math.MaxInt64 (after every other event), so it can always be linearized after every completed
// operation, where its effect is seen by no one; that is the same as "never happened". So Step
// accepts an info op with any state and applies its effect as if it happened (a cas applies iff
// the state equals expected), and an info read changes nothing. This is exact, not an
// approximation: "took effect at time t" and "never took effect" are both reachable.
func stepModel(state, in, out interface{}) (bool, interface{}) {
	s := state.(val)
	i := in.(*input)
	o := out.(*output)
	switch i.kind {
	case opRead:
		if o.unknown || o.value == s {
			return true, s
		}
		return false, s
	case opWrite:
		return true, i.arg
	case opAppend:
		// (current or "") + v; s.s is "" when absent.
		return true, val{present: true, s: s.s + i.arg.s}
	case opCas:
		applies := s == i.arg
		next := s
		if applies {
			next = i.arg2
		}
		if o.unknown {
			return true, next
		}
		if o.applied != applies || (o.hasPrev && o.prev != s) {
			return false, s
		}
		return true, next
	}
	panic("unknown op kind")
}

// hashState is FNV-1a over the value, with presence mixed in; Equal states hash equally.
func hashState(state interface{}) uint64 {
	s := state.(val)
	h := uint64(14695981039346656037)
	if s.present {
		h ^= 1
		h *= 1099511628211
	}
	for i := 0; i < len(s.s); i++ {
		h ^= uint64(s.s[i])
		h *= 1099511628211
	}
	return h
}

// partitionByKey splits a history into one sub-history per register / key (in order of first
// appearance): operations on different keys never constrain each other.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := make(map[partKey]int)
	var parts [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(*input).part
		n, ok := index[k]
		if !ok {
			n = len(parts)
			index[k] = n
			parts = append(parts, nil)
		}
		parts[n] = append(parts[n], op)
	}
	return parts
}

var kvModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() interface{} { return absent },
	Step:      stepModel,
	Equal:     func(a, b interface{}) bool { return a.(val) == b.(val) },
	Hash:      hashState,
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(*input), out.(*output)
		names := [...]string{"read", "write", "cas", "append"}
		var res string
		switch {
		case o.unknown:
			res = "unknown"
		case i.kind == opRead:
			res = o.value.String()
		case i.kind == opCas:
			res = fmt.Sprintf("applied=%v", o.applied)
		default:
			res = "ok"
		}
		return fmt.Sprintf("%s(%v, %v, %v) -> %s", names[i.kind], i.part.key, i.arg, i.arg2, res)
	},
	DescribeState: func(state interface{}) string { return state.(val).String() },
}

// record is one line of a history file as written.
type record struct {
	Process    int64           `json:"process"`
	F          string          `json:"f"`
	Key        *string         `json:"key"`
	Value      json.RawMessage `json:"value"`
	Output     json.RawMessage `json:"output"`
	Type       string          `json:"type"`
	InvokeNs   *int64          `json:"invoke_ns"`
	CompleteNs *int64          `json:"complete_ns"`
}

// isNull: the field was absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// emptyIsAbsent is set for a key-value history (one naming its operations get, put or append): there,
// as in our checker's kv model, a key never written reads as null or as "", which are one state.
var emptyIsAbsent bool

// parseVal reads a JSON string or null (or an absent field) as a val.
func parseVal(raw json.RawMessage) (val, error) {
	if isNull(raw) {
		return absent, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return absent, fmt.Errorf("want a string or null, got %s", raw)
	}
	if emptyIsAbsent && s == "" {
		return absent, nil
	}
	return val{present: true, s: s}, nil
}

// toOperation translates one record; ok is false for a "fail" op (it did not happen).
func toOperation(r *record) (op porcupine.Operation, ok bool, err error) {
	if r.Type == "fail" {
		return op, false, nil
	}
	if r.Type != "ok" && r.Type != "info" {
		return op, false, fmt.Errorf("type %q: want ok, info or fail", r.Type)
	}
	in := &input{}
	if r.Key != nil {
		in.part = partKey{keyed: true, key: *r.Key}
	}
	switch r.F {
	case "read", "get":
		in.kind = opRead
	case "write", "put":
		in.kind = opWrite
		if in.arg, err = parseVal(r.Value); err != nil {
			return op, false, err
		}
	case "append":
		in.kind = opAppend
		if in.arg, err = parseVal(r.Value); err != nil {
			return op, false, err
		}
		if !in.arg.present {
			return op, false, fmt.Errorf("append of null")
		}
	case "cas":
		in.kind = opCas
		var pair []json.RawMessage
		if err = json.Unmarshal(r.Value, &pair); err != nil || len(pair) != 2 {
			return op, false, fmt.Errorf("cas value: want [expected, new], got %s", r.Value)
		}
		if in.arg, err = parseVal(pair[0]); err != nil {
			return op, false, err
		}
		if in.arg2, err = parseVal(pair[1]); err != nil {
			return op, false, err
		}
	default:
		return op, false, fmt.Errorf("f %q: want read, write, cas, get, put or append", r.F)
	}
	if r.InvokeNs == nil {
		return op, false, fmt.Errorf("no invoke_ns")
	}
	out := &output{}
	ret := int64(math.MaxInt64) // info: returns after every other event
	if r.Type == "info" {
		out.unknown = true
	} else {
		if r.CompleteNs == nil {
			return op, false, fmt.Errorf("an ok op without complete_ns")
		}
		// As our checker does: a return before its invoke counts as at the invoke.
		ret = *r.CompleteNs
		if ret < *r.InvokeNs {
			ret = *r.InvokeNs
		}
		switch in.kind {
		case opRead:
			// A missing "output" reads as null (absent).
			if out.value, err = parseVal(r.Output); err != nil {
				return op, false, err
			}
		case opCas:
			if isNull(r.Output) {
				// An ok cas without output applied (so it saw expected).
				out.applied = true
			} else {
				var o map[string]json.RawMessage
				if err = json.Unmarshal(r.Output, &o); err != nil {
					return op, false, fmt.Errorf("cas output: want an object, got %s", r.Output)
				}
				a, has := o["applied"]
				if !has || json.Unmarshal(a, &out.applied) != nil {
					return op, false, fmt.Errorf("cas output without a boolean \"applied\": %s", r.Output)
				}
				if p, has := o["previous"]; has {
					out.hasPrev = true
					if out.prev, err = parseVal(p); err != nil {
						return op, false, err
					}
				}
			}
		}
		// Outputs of write/put/append are ignored.
	}
	return porcupine.Operation{
		ClientId: int(r.Process),
		Input:    in,
		Call:     *r.InvokeNs,
		Output:   out,
		Return:   ret,
	}, true, nil
}

// readHistory parses one file into Porcupine operations.
func readHistory(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var records []record
	var lines []int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(text, &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		records = append(records, r)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	emptyIsAbsent = false
	for _, r := range records {
		if r.F == "get" || r.F == "put" || r.F == "append" {
			emptyIsAbsent = true
		}
	}
	var history []porcupine.Operation
	for i := range records {
		op, keep, err := toOperation(&records[i])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, lines[i], err)
		}
		if keep {
			history = append(history, op)
		}
	}
	return history, nil
}

func main() {
	timeoutS := flag.Float64("timeout-s", 0, "per-file timeout in seconds (0: none)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: porcupine-driver [--timeout-s N] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *timeoutS < 0 {
		flag.Usage()
		os.Exit(2)
	}
	timeout := time.Duration(*timeoutS * float64(time.Second))
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, path := range flag.Args() {
		history, err := readHistory(path)
		if err != nil {
			out.Flush()
			fmt.Fprintln(os.Stderr, "porcupine-driver:", err)
			os.Exit(2)
		}
		start := time.Now()
		res := porcupine.CheckOperationsTimeout(kvModel, history, timeout)
		elapsed := time.Since(start)
		verdict := "unknown"
		switch res {
		case porcupine.Ok:
			verdict = "linearizable"
		case porcupine.Illegal:
			verdict = "not-linearizable"
		}
		fmt.Fprintf(out, "%s\t%s\t%.3f\n", path, verdict, float64(elapsed.Nanoseconds())/1e6)
		out.Flush()
	}
}
