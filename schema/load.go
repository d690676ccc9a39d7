package schema

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Loader reads policy roots into PolicySets. It caches the decoded result
// of each unit (a directory's CUE files, or one data file) by the hash of
// its content, so that a reload evaluates only what changed. A Loader is
// safe for concurrent use; the PolicySets it returns share cached entities
// and are read-only.
type Loader struct {
	mu    sync.Mutex
	cache map[string]*unitResult // by unit key
	last  *mergedState           // the last policy that loaded without errors
	// Workers bounds how many units are evaluated at once (default GOMAXPROCS).
	Workers int
	// CUE, when not nil, evaluates each directory's CUE files elsewhere:
	// package schema/cueproc runs them in a child process under a memory
	// limit and a deadline. Nil evaluates them in this process, where an
	// evaluation can neither be bounded nor interrupted. Set it before the
	// first Load.
	CUE CUERunner
	// Limits bound the size of each policy file and of all of them
	// together, checked before a file is read; a file over them is an
	// error of the policy. The zero value takes the defaults.
	Limits SizeLimits
}

// NewLoader returns a Loader with an empty cache.
func NewLoader() *Loader {
	return &Loader{cache: map[string]*unitResult{}}
}

// unit is what is evaluated on its own: the CUE files of one directory, or one data file.
type unit struct {
	key      string // "dir:" + directory, or "file:" + file name
	dir      string
	files    []sourceFile
	readErrs Errors // files of the unit that are not read (ReadPolicyFile)
	hash     [sha256.Size]byte
}

type unitResult struct {
	key    string
	hash   [sha256.Size]byte
	policy *PolicySet // nil when the unit did not decode; with errs, the entities that did
	refs   references // roles and groups the unit names
	errs   Errors
	// declared lists the roles and groups a unit with errors declares,
	// including those that failed to decode; nil when the unit did not
	// parse far enough to tell.
	declared *references
}

// Stats says how much work the last Load did; tests and benchmarks read it.
type Stats struct {
	Units     int // units found
	Evaluated int // units evaluated (not taken from the cache)
}

// Load reads the policy root fsys (see SPEC section 1), validates it
// (section 3.1, without running tests) and returns the merged policy. When
// the policy is invalid the error is an Errors holding every problem, sorted
// by position: the schema errors of each unit, and the duplicates and
// references among the units that decoded. It returns ErrNoPolicy when fsys
// holds no policy file, and other errors for I/O failures.
func (l *Loader) Load(ctx context.Context, fsys fs.FS) (*PolicySet, error) {
	res, err := l.LoadResult(ctx, fsys)
	if err != nil {
		return nil, err
	}
	return res.Set, nil
}

// Loaded is what a load produced: the policy set, how much was evaluated,
// and, when the set was patched from the Loader's previous one, which
// entities the changed units declare. A structural diff from PatchedFrom
// needs to look at those entities only (package schema/change).
type Loaded struct {
	Set   *PolicySet
	Stats Stats
	// PatchedFrom is the policy set this one was patched from, or nil when
	// every unit was merged anew. Every entity not in Touched is shared,
	// pointer for pointer, between the two.
	PatchedFrom *PolicySet
	// Touched lists the IDs declared by the units that changed since
	// PatchedFrom, in either set, sorted and without duplicates.
	Touched EntityIDs
}

// EntityIDs lists entity IDs by kind.
type EntityIDs struct {
	Roles, Groups, Records, ResourceServers, Tests []string
}

func (ids *EntityIDs) add(p *PolicySet) {
	ids.Roles = appendKeys(ids.Roles, p.Roles)
	ids.Groups = appendKeys(ids.Groups, p.Groups)
	ids.Records = appendKeys(ids.Records, p.Records)
	ids.ResourceServers = appendKeys(ids.ResourceServers, p.ResourceServers)
	ids.Tests = appendKeys(ids.Tests, p.Tests)
}

func appendKeys[T any](ids []string, m map[string]T) []string {
	for id := range m {
		ids = append(ids, id)
	}
	return ids
}

// LoadResult is Load that also says how the set relates to the previous one.
func (l *Loader) LoadResult(ctx context.Context, fsys fs.FS) (*Loaded, error) {
	p, stats, patch, err := l.load(ctx, fsys)
	if err != nil {
		return nil, err
	}
	res := &Loaded{Set: p, Stats: stats}
	if patch != nil {
		res.PatchedFrom, res.Touched = patch.from, patch.touched
	}
	return res, nil
}

// patchInfo says that a merged policy was patched from an earlier one, and
// which entity IDs the changed units declare.
type patchInfo struct {
	from    *PolicySet
	touched EntityIDs
}

func (l *Loader) load(ctx context.Context, fsys fs.FS) (*PolicySet, Stats, *patchInfo, error) {
	units, err := readUnits(ctx, fsys, l.Limits.WithDefaults())
	if err != nil {
		return nil, Stats{}, nil, err
	}
	if len(units) == 0 {
		return nil, Stats{}, nil, ErrNoPolicy
	}
	results, evaluated, err := l.evaluate(ctx, units)
	if err != nil {
		return nil, Stats{}, nil, err
	}
	stats := Stats{Units: len(units), Evaluated: evaluated}
	var errs Errors
	for _, r := range results {
		errs = append(errs, r.errs...)
	}
	if len(errs) > 0 {
		return nil, stats, nil, sortErrors(append(errs, crossUnitErrors(results)...))
	}
	merged, patch, errs := l.merge(results)
	for _, r := range results {
		if !r.refs.resolve(merged) {
			errs = append(errs, checkRefs(r.policy, merged)...)
		}
	}
	if len(errs) > 0 {
		return nil, stats, nil, sortErrors(errs)
	}
	return merged, stats, patch, nil
}

// byteOrderMark is U+FEFF in UTF-8, which some editors write at the start of
// a file. readUnits drops it, as the cue tool does, so that every parser sees
// the file from its first character and column 1 is the character after it.
var byteOrderMark = []byte{0xef, 0xbb, 0xbf}

// readUnits walks fsys and groups its policy files into units, skipping
// hidden files and directories and CUE's module directory. A policy file
// that ReadPolicyFile refuses (not a regular file, a link out of the root,
// over lim) stays in its unit as an error; other read errors end the walk.
// A UTF-8 byte-order mark at the start of a file is dropped.
func readUnits(ctx context.Context, fsys fs.FS, lim SizeLimits) ([]*unit, error) {
	dirs := map[string]*unit{}
	var units []*unit
	var total int64 // the bytes of the files read so far
	err := WalkPolicyFiles(ctx, fsys, func(name string) error {
		data, err := readWithin(fsys, name, lim, total)
		total += int64(len(data))
		var bad *Error
		if err != nil && !errors.As(err, &bad) {
			return err
		}
		var u *unit
		if path.Ext(name) != ".cue" {
			u = &unit{key: "file:" + name, dir: path.Dir(name)}
			units = append(units, u)
		} else {
			dir := path.Dir(name)
			if u = dirs[dir]; u == nil {
				u = &unit{key: "dir:" + dir, dir: dir}
				dirs[dir] = u
				units = append(units, u)
			}
		}
		if bad != nil {
			u.readErrs = append(u.readErrs, bad)
			return nil
		}
		u.files = append(u.files, sourceFile{name: name, data: bytes.TrimPrefix(data, byteOrderMark)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policy root: %w", err)
	}
	for _, u := range units {
		h := sha256.New()
		for _, f := range u.files {
			fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
			h.Write(f.data)
		}
		for _, e := range u.readErrs {
			fmt.Fprintf(h, "\x00unread\x00%s\x00", e)
		}
		h.Sum(u.hash[:0])
	}
	slices.SortFunc(units, func(a, b *unit) int { return strings.Compare(a.key, b.key) })
	return units, nil
}

// readWithin is ReadPolicyFile under lim, after total bytes of other files
// were read: both bounds are checked before the file is read.
func readWithin(fsys fs.FS, name string, lim SizeLimits, total int64) ([]byte, error) {
	resolved, info, err := StatPolicyFile(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := lim.Check(name, info.Size(), total); err != nil {
		return nil, err
	}
	data, _, _, err := readChecked(fsys, name, resolved, info, lim.File)
	return data, err
}

// evaluate returns each unit's result, from the cache when its hash is
// unchanged, else by evaluating it on one of l.Workers goroutines. The cache
// keeps only the units of this load.
func (l *Loader) evaluate(ctx context.Context, units []*unit) ([]*unitResult, int, error) {
	results := make([]*unitResult, len(units))
	var todo []int
	l.mu.Lock()
	for i, u := range units {
		if r, ok := l.cache[u.key]; ok && r.hash == u.hash {
			results[i] = r
		} else {
			todo = append(todo, i)
		}
	}
	l.mu.Unlock()

	workers := l.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failed   error
	)
	evalCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if evalCtx.Err() != nil {
					continue // a unit failed, or ctx ended: drain what was queued
				}
				r, err := l.evalUnit(evalCtx, units[i])
				if err != nil {
					failOnce.Do(func() { failed = err })
					cancel()
					continue
				}
				results[i] = r
			}
		}()
	}
feed:
	for _, i := range todo {
		select {
		case next <- i:
		case <-evalCtx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if failed != nil {
		return nil, 0, failed
	}

	fresh := make(map[string]*unitResult, len(units))
	for i, u := range units {
		fresh[u.key] = results[i]
	}
	l.mu.Lock()
	l.cache = fresh
	l.mu.Unlock()
	return results, len(todo), nil
}

// evalUnit decodes and validates one unit on its own. A unit with a file
// that was not read is not evaluated: what it declares is unknown. The
// error, from evaluating CUE (evalCUEUnit), ends the load.
func (l *Loader) evalUnit(ctx context.Context, u *unit) (*unitResult, error) {
	r := &unitResult{key: u.key, hash: u.hash}
	if len(u.readErrs) > 0 {
		r.errs = slices.Clone(u.readErrs)
		return r, nil
	}
	for _, f := range u.files {
		if err := checkUTF8(f); err != nil {
			r.errs = append(r.errs, err)
		}
	}
	if len(r.errs) > 0 {
		return r, nil
	}
	var tree *node
	if strings.HasPrefix(u.key, "dir:") {
		res, err := l.evalCUEUnit(ctx, u)
		if err != nil {
			return nil, err
		}
		if res.tree == nil {
			r.errs, r.declared = res.errs, res.declared
			return r, nil
		}
		tree = res.tree
	} else {
		f := u.files[0]
		var perr *Error
		if path.Ext(f.name) == ".json" {
			tree, perr = parseJSON(f.name, f.data)
		} else {
			tree, perr = parseYAML(f.name, f.data)
		}
		if perr != nil {
			r.errs = Errors{perr}
			return r, nil
		}
	}
	r.policy, r.errs = decodePolicy(tree)
	r.declared = declaredIn(tree)
	r.finish()
	return r, nil
}

// finish runs the unit's local checks and lists its references, once the
// unit decoded. It keeps declared only for a unit with errors.
func (r *unitResult) finish() {
	if len(r.errs) == 0 {
		r.errs = checkLocal(r.policy)
		r.refs = referencesOf(r.policy)
	}
	if len(r.errs) == 0 {
		r.declared = nil
	}
}

// crossUnitErrors runs the checks between units for a load in which some
// unit has errors, so that every error is reported at once (SPEC 3.1): the
// units that decoded, wholly or in part, are merged afresh (the Loader's
// last good state is left alone), and duplicates and references are
// checked among them.
//
// A reference to a role or group that a unit with errors declares is not
// reported: the entity exists, and its own error is. A unit that did not
// parse declares no one knows what, so a reference that resolves nowhere is
// still reported (CUE users expect every error), and its message names the
// files that did not parse and may declare it.
func crossUnitErrors(results []*unitResult) Errors {
	var decoded []*unitResult
	b := &brokenUnits{roles: map[string]bool{}, groups: map[string]bool{}}
	for _, r := range results {
		if r.policy != nil {
			decoded = append(decoded, r)
		}
		switch {
		case len(r.errs) == 0:
		case r.declared == nil:
			b.unparsed = append(b.unparsed, r.errs.files()...)
		default:
			for _, id := range r.declared.roles {
				b.roles[id] = true
			}
			for _, id := range r.declared.groups {
				b.groups[id] = true
			}
		}
	}
	slices.Sort(b.unparsed)
	b.unparsed = slices.Compact(b.unparsed)
	merged, errs := mergeAll(decoded)
	for _, r := range decoded {
		if len(r.errs) == 0 && r.refs.resolve(merged) {
			continue
		}
		c := &checker{p: r.policy, all: merged, broken: b}
		c.run()
		errs = append(errs, c.errs...)
	}
	return errs
}

// declaredIn lists the roles and groups a data file's tree declares, whether
// or not they decode.
func declaredIn(tree *node) *references {
	d := &references{}
	for _, f := range tree.fields {
		if f.val.kind != kindObject || f.key != "roles" && f.key != "groups" {
			continue
		}
		for _, e := range f.val.fields {
			if f.key == "roles" {
				d.roles = append(d.roles, e.key)
			} else {
				d.groups = append(d.groups, e.key)
			}
		}
	}
	return d
}

// checkUTF8 reports the position of the first byte that is not UTF-8.
func checkUTF8(f sourceFile) *Error {
	if utf8.Valid(f.data) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(f.data); {
		r, size := utf8.DecodeRune(f.data[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Error{Pos: Pos{File: f.name, Line: line, Col: col}, Message: fmt.Sprintf("file is not UTF-8: invalid byte 0x%02x", f.data[i])}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// mergedState is a merged policy and the unit results it was merged from.
type mergedState struct {
	units  map[*unitResult]bool
	policy *PolicySet
}

// merge combines the units' policies into one. When few units changed since
// the last good load, it patches a copy of that policy (removing the entities
// of units that are gone, adding those of new units) instead of merging every
// unit again. An entity declared in two units is an error naming both places.
func (l *Loader) merge(results []*unitResult) (*PolicySet, *patchInfo, Errors) {
	l.mu.Lock()
	last := l.last
	l.mu.Unlock()
	merged, patch, errs := patchMerge(last, results)
	if patch == nil {
		merged, errs = mergeAll(results)
	}
	if len(errs) == 0 {
		state := &mergedState{units: make(map[*unitResult]bool, len(results)), policy: merged}
		for _, r := range results {
			state.units[r] = true
		}
		l.mu.Lock()
		l.last = state
		l.mu.Unlock()
	}
	return merged, patch, errs
}

// patchMerge derives the merged policy of results from last, or returns a
// nil patchInfo when there is no last state or too much changed for a patch
// to pay.
func patchMerge(last *mergedState, results []*unitResult) (*PolicySet, *patchInfo, Errors) {
	if last == nil {
		return nil, nil, nil
	}
	current := make(map[*unitResult]bool, len(results))
	var added []*unitResult
	for _, r := range results {
		current[r] = true
		if !last.units[r] {
			added = append(added, r)
		}
	}
	var removed []*unitResult
	for r := range last.units {
		if !current[r] {
			removed = append(removed, r)
		}
	}
	if len(added)+len(removed) > len(results)/4+1 {
		return nil, nil, nil
	}
	out := &PolicySet{
		Roles:           maps.Clone(last.policy.Roles),
		Groups:          maps.Clone(last.policy.Groups),
		Records:         maps.Clone(last.policy.Records),
		ResourceServers: maps.Clone(last.policy.ResourceServers),
		Tests:           maps.Clone(last.policy.Tests),
	}
	for _, r := range removed {
		deleteFrom(out.Roles, r.policy.Roles)
		deleteFrom(out.Groups, r.policy.Groups)
		deleteFrom(out.Records, r.policy.Records)
		deleteFrom(out.ResourceServers, r.policy.ResourceServers)
		deleteFrom(out.Tests, r.policy.Tests)
	}
	slices.SortFunc(added, func(a, b *unitResult) int { return strings.Compare(a.key, b.key) })
	patch := &patchInfo{from: last.policy}
	var errs Errors
	for _, r := range added {
		errs = mergeUnit(out, r.policy, errs)
		patch.touched.add(r.policy)
	}
	for _, r := range removed {
		patch.touched.add(r.policy)
	}
	for _, ids := range []*[]string{&patch.touched.Roles, &patch.touched.Groups, &patch.touched.Records, &patch.touched.ResourceServers, &patch.touched.Tests} {
		slices.Sort(*ids)
		*ids = slices.Compact(*ids)
	}
	return out, patch, errs
}

// deleteFrom removes from dst the entities of src, where dst holds them.
func deleteFrom[T any](dst, src map[string]*T) {
	for id, e := range src {
		if dst[id] == e {
			delete(dst, id)
		}
	}
}

// mergeAll merges every unit into a new policy.
func mergeAll(results []*unitResult) (*PolicySet, Errors) {
	out := NewPolicySet()
	n := [5]int{}
	for _, r := range results {
		n[0] += len(r.policy.Roles)
		n[1] += len(r.policy.Groups)
		n[2] += len(r.policy.Records)
		n[3] += len(r.policy.ResourceServers)
		n[4] += len(r.policy.Tests)
	}
	out.Roles = make(map[string]*Role, n[0])
	out.Groups = make(map[string]*Group, n[1])
	out.Records = make(map[string]*Record, n[2])
	out.ResourceServers = make(map[string]*ResourceServer, n[3])
	out.Tests = make(map[string]*Test, n[4])
	var errs Errors
	for _, r := range results {
		errs = mergeUnit(out, r.policy, errs)
	}
	return out, errs
}

// mergeUnit adds the entities of one unit to out.
func mergeUnit(out, unit *PolicySet, errs Errors) Errors {
	errs = mergeInto(out.Roles, unit.Roles, "roles", func(e *Role) Pos { return e.Pos }, errs)
	errs = mergeInto(out.Groups, unit.Groups, "groups", func(e *Group) Pos { return e.Pos }, errs)
	errs = mergeInto(out.Records, unit.Records, "records", func(e *Record) Pos { return e.Pos }, errs)
	errs = mergeInto(out.ResourceServers, unit.ResourceServers, "resourceServers", func(e *ResourceServer) Pos { return e.Pos }, errs)
	return mergeInto(out.Tests, unit.Tests, "tests", func(e *Test) Pos { return e.Pos }, errs)
}

func mergeInto[T any](dst, src map[string]*T, kind string, pos func(*T) Pos, errs Errors) Errors {
	for id, e := range src {
		if prev, dup := dst[id]; dup {
			first, second := pos(prev), pos(e)
			if second.Less(first) {
				first, second = second, first
			}
			errs = append(errs, &Error{Pos: second, Path: JoinPath(kind, id),
				Message: fmt.Sprintf("declared again: it is already declared at %s (an entity may be declared in one directory or data file only)", first)})
			continue
		}
		dst[id] = e
	}
	return errs
}

// IsUserError reports whether err describes a problem in the policy files
// (as opposed to I/O or usage).
func IsUserError(err error) bool {
	var es Errors
	return errors.As(err, &es)
}
