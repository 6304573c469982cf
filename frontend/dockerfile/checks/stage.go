package checks

import (
	"fmt"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/frontend/dockerfile/internal/suggest"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// stageFacts is what the rules need to know of a stage at one point, and
// what a stage built on it starts with.
type stageFacts struct {
	env        *checkEnv
	shellSet   bool // a SHELL is set (JSONArgsRecommended)
	workdirSet bool // a WORKDIR was seen (WorkdirRelativePath)
	// Where the last CMD, ENTRYPOINT and HEALTHCHECK are, by name.
	lastAt map[string][]parser.Range
}

// checkStage runs the rules about one stage: its FROM line, then each
// instruction with the variables defined before it.
func (ck *checker) checkStage(i int, lint *linter.Linter) error {
	st := ck.stages[i]
	lint = lint.WithMergedConfigFromComments(st.Comments)
	base, err := ck.lex.ProcessWordWithMatches(st.BaseName, ck.globals)
	ck.reportFromArgs(base.Unmatched, st.Location, lint)
	if err != nil {
		return nil // the build reports it
	}
	if st.Platform != "" {
		plat, err := ck.lex.ProcessWordWithMatches(st.Platform, ck.globals)
		ck.reportFromArgs(plat.Unmatched, st.Location, lint)
		if err == nil {
			ck.checkPlatform(st, plat, lint)
		}
	}
	f := &stageFacts{lastAt: map[string][]parser.Range{}}
	if j := ck.stageByName(base.Result, i); j >= 0 && ck.facts[j] != nil {
		// A stage built on another starts with what it ended with (the
		// last CMD and the like excepted), as in BuildKit.
		p := ck.facts[j]
		f.env, f.shellSet, f.workdirSet = p.env.clone(), p.shellSet, p.workdirSet
	} else if f.env, f.shellSet, err = ck.imageEnv(base.Result); err != nil {
		return err
	}
	for _, cmd := range st.Commands {
		ck.checkCommand(cmd, f, lint.WithMergedConfigFromComments(cmd.Comments()))
	}
	ck.facts[i] = f
	return nil
}

// checkCommand runs the rules about one instruction and records what it
// changes in f.
func (ck *checker) checkCommand(cmd instructions.Command, f *stageFacts, lint *linter.Linter) {
	if c, ok := cmd.(*instructions.ArgCommand); ok {
		ck.checkArg(c, f.env, lint)
		return
	}
	ck.expand(cmd, f.env, lint)
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			if kv.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
			checkSecretName("ENV", kv.Key, c.Location(), lint)
			f.env.set(kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		for _, kv := range c.Labels {
			if kv.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
		}
	case *instructions.CmdCommand:
		f.usedOnce(c, lint)
		if c.PrependShell && !f.shellSet {
			lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
		}
	case *instructions.EntrypointCommand:
		f.usedOnce(c, lint)
		if c.PrependShell && !f.shellSet {
			lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
		}
	case *instructions.HealthCheckCommand:
		f.usedOnce(c, lint)
	case *instructions.ShellCommand:
		f.shellSet = true
	case *instructions.WorkdirCommand:
		// Only the first WORKDIR: fixing it fixes the rest.
		if !f.workdirSet && !path.IsAbs(c.Path) {
			lint.Run(&linter.RuleWorkdirRelativePath, c.Location(), linter.RuleWorkdirRelativePath.Format(c.Path))
		}
		f.workdirSet = true
	case *instructions.CopyCommand:
		if c.From == "" {
			ck.checkIgnored("Copy", c.SourcePaths, c.Location(), lint)
		}
	case *instructions.AddCommand:
		ck.checkIgnored("Add", c.SourcePaths, c.Location(), lint)
	case *instructions.ExposeCommand:
		ck.checkExpose(c, f.env, lint)
	}
}

// usedOnce reports the previous instruction of c's kind in the stage,
// which c makes void (MultipleInstructionsDisallowed).
func (f *stageFacts) usedOnce(c instructions.Command, lint *linter.Linter) {
	kind := strings.ToLower(c.Name())
	if at := f.lastAt[kind]; at != nil {
		lint.Run(&linter.RuleMultipleInstructionsDisallowed, at, linter.RuleMultipleInstructionsDisallowed.Format(c.Name()))
	}
	f.lastAt[kind] = c.Location()
}

// imageEnv is the environment a stage on an image starts with: the
// image's, or scratch's PATH, or an unknown one when the image cannot be
// resolved; and whether the image sets a SHELL.
func (ck *checker) imageEnv(base string) (*checkEnv, bool, error) {
	env := newCheckEnv()
	ref := base
	if v, ok := ck.opt.Contexts[base]; ok {
		ref, ok = strings.CutPrefix(v, "docker-image://")
		if !ok {
			ref = ""
		}
	}
	if strings.EqualFold(base, "scratch") || ref == "" || ck.resolver == nil {
		env.set("PATH", dockerfile.DefaultPath)
		return env, false, nil
	}
	res, err := ck.resolver.ResolveImage(ck.ctx, ref, ck.opt.TargetPlatform)
	if err != nil {
		if ck.ctx.Err() != nil {
			return nil, false, err
		}
		// As BuildKit's lint: the other rules still run, and a build of
		// a stage that needs the image reports why it cannot be had.
		env.unknown = true
		return env, false, nil
	}
	for _, kv := range res.Config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env.set(k, v)
	}
	return env, len(res.Config.Config.Shell) > 0, nil
}

// checkArg declares the ARGs of c in env, reporting sensitive names and
// undefined variables in defaults.
func (ck *checker) checkArg(c *instructions.ArgCommand, env *checkEnv, lint *linter.Linter) {
	for _, kv := range c.Args {
		checkSecretName("ARG", kv.Key, c.Location(), lint)
		if v, ok := ck.opt.BuildArgs[kv.Key]; ok {
			env.set(kv.Key, v)
		} else if kv.Value != nil {
			v, unmatched, _ := ck.lex.ProcessWord(*kv.Value, env)
			ck.reportUndefined(unmatched, env, c, lint)
			env.set(kv.Key, v)
		} else if v, ok := ck.globals.Get(kv.Key); ok {
			env.set(kv.Key, v)
		}
		env.declared[kv.Key] = true
	}
}

// expand expands the words of cmd that the build expands, reporting
// variables that are not defined (UndefinedVar).
func (ck *checker) expand(cmd instructions.Command, env *checkEnv, lint *linter.Linter) {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		ex.Expand(func(word string) (string, error) {
			v, unmatched, err := ck.lex.ProcessWord(word, env)
			ck.reportUndefined(unmatched, env, cmd, lint)
			return v, err
		})
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		ex.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			v, unmatched, err := lex.ProcessWord(word, env)
			ck.reportUndefined(unmatched, env, cmd, lint)
			return v, err
		})
	}
}

func (ck *checker) reportUndefined(unmatched map[string]struct{}, env *checkEnv, cmd instructions.Command, lint *linter.Linter) {
	var names []string
	for k := range unmatched {
		if !env.declared[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		lint.Run(&linter.RuleUndefinedVar, cmd.Location(), linter.RuleUndefinedVar.Format(k, suggestion(k, env.Keys())))
	}
}

// reportFromArgs reports variables in a FROM line that no global ARG
// declares (UndefinedArgInFrom).
func (ck *checker) reportFromArgs(unmatched map[string]struct{}, loc []parser.Range, lint *linter.Linter) {
	var names []string
	for k := range unmatched {
		if _, ok := ck.globals.Get(k); !ok && !ck.globals.declared[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var declared []string
	for k := range ck.globals.declared {
		declared = append(declared, k)
	}
	slices.Sort(declared)
	for _, k := range names {
		lint.Run(&linter.RuleUndefinedArgInFrom, loc, linter.RuleUndefinedArgInFrom.Format(k, suggestion(k, declared)))
	}
}

// checkPlatform runs the rules about FROM --platform.
func (ck *checker) checkPlatform(st instructions.Stage, plat shell.ProcessWordResult, lint *linter.Linter) {
	if len(plat.Matched) == 1 && len(plat.Unmatched) == 0 {
		if _, ok := plat.Matched["TARGETPLATFORM"]; ok {
			if v, _ := ck.globals.Get("TARGETPLATFORM"); v == plat.Result {
				lint.Run(&linter.RuleRedundantTargetPlatform, st.Location, linter.RuleRedundantTargetPlatform.Format(st.Platform))
			}
		}
	}
	if len(plat.Matched) > 0 || len(plat.Unmatched) > 0 {
		return // not a constant
	}
	os, arch, ok := parsePlatform(plat.Result)
	if !ok || strings.Contains(st.Name, os) || strings.Contains(st.Name, arch) {
		// A stage named for its platform (FROM --platform=linux/arm64 AS
		// build-arm64) is deliberate.
		return
	}
	lint.Run(&linter.RuleFromPlatformFlagConstDisallowed, st.Location, linter.RuleFromPlatformFlagConstDisallowed.Format(plat.Result))
}

var knownOS = []string{"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9", "android", "ios", "js", "wasip1", "dragonfly"}

// parsePlatform splits "os[/arch[/variant]]" (or a bare architecture).
func parsePlatform(s string) (os, arch string, ok bool) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return "", "", false
	}
	if len(parts) == 1 {
		if slices.Contains(knownOS, parts[0]) {
			return parts[0], runtime.GOARCH, true
		}
		return "linux", parts[0], true
	}
	return parts[0], parts[1], slices.Contains(knownOS, parts[0])
}

// checkExpose reports EXPOSE ports with an upper-case protocol
// (ExposeProtoCasing) or a host address or port (ExposeInvalidFormat:
// EXPOSE publishes nothing).
func (ck *checker) checkExpose(c *instructions.ExposeCommand, env *checkEnv, lint *linter.Linter) {
	for _, p := range c.Ports {
		words, err := ck.lex.ProcessWords(p, env)
		if err != nil {
			continue
		}
		for _, w := range words {
			parts := strings.Split(w, ":")
			last := parts[len(parts)-1]
			if _, proto, _ := strings.Cut(last, "/"); proto != strings.ToLower(proto) {
				lint.Run(&linter.RuleExposeProtoCasing, c.Location(), linter.RuleExposeProtoCasing.Format(w))
			}
			// [ip:]hostport:port, the ip possibly with colons.
			var ip, hostPort string
			if n := len(parts); n > 1 {
				ip, hostPort = strings.Join(parts[:n-2], ":"), parts[n-2]
			}
			if ip != "" || hostPort != "" {
				lint.Run(&linter.RuleExposeInvalidFormat, c.Location(), linter.RuleExposeInvalidFormat.Format(w))
			}
		}
	}
}

// checkIgnored reports context sources that .dockerignore excludes
// (CopyIgnoredFile). With exclusions (!pattern) it says nothing: a file
// may be re-included below an excluded directory.
func (ck *checker) checkIgnored(cmd string, sources []string, loc []parser.Range, lint *linter.Linter) {
	if ck.ignore == nil || ck.ignore.Exclusions() {
		return
	}
	for _, src := range sources {
		if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
			continue
		}
		src = path.Clean(strings.TrimPrefix(path.Clean("/"+src), "/"))
		if src == "." && !ignoresRoot(ck.opt.Excludes) {
			continue
		}
		if ok, err := ck.ignore.MatchesOrParentMatches(src); err == nil && ok {
			lint.Run(&linter.RuleCopyIgnoredFile, loc, linter.RuleCopyIgnoredFile.Format(cmd, src))
		}
	}
}

// ignoresRoot reports whether the patterns exclude everything, so that
// copying the context root copies nothing.
func ignoresRoot(patterns []string) bool {
	for _, p := range patterns {
		switch strings.TrimSpace(p) {
		case "*", "**", "**/*":
			return true
		}
	}
	return false
}

// The words of an ARG or ENV name ("_"-separated, any case) that make it
// look like a secret, and those that clear it (BuildKit's regexps
// (?i)(?:_|^)(?:apikey|...)(?:_|$), matched word by word: compiling them
// at start-up cost every builder command a few hundred microseconds).
var (
	secretWords      = []string{"apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"}
	secretAllowWords = []string{"public", "file", "version"}
)

// hasWord reports whether one of name's "_"-separated words is one of
// words, in any case.
func hasWord(name string, words []string) bool {
	for w := range strings.SplitSeq(name, "_") {
		for _, s := range words {
			if strings.EqualFold(w, s) {
				return true
			}
		}
	}
	return false
}

// checkSecretName reports ARG and ENV names that look like they hold a
// secret, which would stay in the image (SecretsUsedInArgOrEnv).
func checkSecretName(instruction, key string, loc []parser.Range, lint *linter.Linter) {
	if hasWord(key, secretWords) && !hasWord(key, secretAllowWords) {
		lint.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

// checkStageNames reports reserved and repeated stage names.
func checkStageNames(stages []instructions.Stage, lint *linter.Linter) {
	seen := map[string]bool{}
	for _, st := range stages {
		if st.Name == "" {
			continue
		}
		if st.Name == "context" || st.Name == "scratch" {
			lint.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
		}
		if seen[st.Name] {
			lint.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
		}
		seen[st.Name] = true
	}
}

// checkCasing reports instructions whose keyword is in mixed case, or in
// the other case than most (ConsistentInstructionCasing).
func checkCasing(stages []instructions.Stage, lint *linter.Linter) {
	lower, upper := 0, 0
	count := func(name string) {
		switch name {
		case strings.ToLower(name):
			lower++
		case strings.ToUpper(name):
			upper++
		}
	}
	for _, st := range stages {
		count(st.OrigCmd)
		for _, c := range st.Commands {
			count(c.Name())
		}
	}
	majorityLower := lower > upper
	check := func(name string, loc []parser.Range) {
		want := ""
		if majorityLower && name != strings.ToLower(name) {
			want = "lowercase"
		} else if !majorityLower && name != strings.ToUpper(name) {
			want = "uppercase"
		}
		if want != "" {
			lint.Run(&linter.RuleConsistentInstructionCasing, loc, linter.RuleConsistentInstructionCasing.Format(name, want))
		}
	}
	for _, st := range stages {
		check(st.OrigCmd, st.Location)
		for _, c := range st.Commands {
			check(c.Name(), c.Location())
		}
	}
}

// suggestion is the candidate name closest to name, or "".
func suggestion(name string, candidates []string) string {
	s := suggest.DidYouMean(name, candidates)
	var out string
	if _, err := fmt.Sscanf(s, " (did you mean %s", &out); err != nil {
		return ""
	}
	return strings.TrimSuffix(out, "?)")
}
