package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/builder-dev/builder/frontend/dockerfile"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busybox resolves the one base image the cases use, with the
// environment UndefinedVar reads.
type busybox struct{}

func (busybox) ResolveImage(_ context.Context, ref string, _ ocispec.Platform) (dockerfile.ResolvedImage, error) {
	if ref != "busybox" {
		return dockerfile.ResolvedImage{}, fmt.Errorf("%s: not found", ref)
	}
	var img dockerfile.Image
	img.Config.Env = []string{"PATH=/bin"}
	return dockerfile.ResolvedImage{Config: img}, nil
}

var amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// checkCases are Dockerfiles with the findings BuildKit's rules give for
// them, as "Rule:line", in line order. Each rule has a case that fires and
// one close to it that does not.
var checkCases = []struct {
	name      string
	df        string
	buildArgs map[string]string
	excludes  []string
	target    string
	all       bool
	want      []string
}{
	{name: "clean", df: "FROM busybox AS base\nENV A=1\nCMD [\"sh\"]\n", want: nil},
	{name: "StageNameCasing", df: "FROM busybox AS Base\nRUN true\n", want: []string{"StageNameCasing:1"}},
	{name: "FromAsCasing", df: "FROM busybox as base\nRUN true\n", want: []string{"FromAsCasing:1"}},
	{name: "FromAsCasing lower", df: "from busybox as base\nrun true\n", want: nil},
	{name: "NoEmptyContinuation", df: "FROM busybox\nRUN echo a && \\\n\n  echo b\n", want: []string{"NoEmptyContinuation:4"}},
	{name: "ConsistentInstructionCasing", df: "FROM busybox\nRUN true\nrun true\nCOPY . /\n", want: []string{"ConsistentInstructionCasing:3"}},
	{name: "ConsistentInstructionCasing mixed", df: "FROM busybox\nRun true\n", want: []string{"ConsistentInstructionCasing:2"}},
	{name: "DuplicateStageName", df: "FROM busybox AS a\nFROM busybox AS a\n", all: true, want: []string{"DuplicateStageName:2"}},
	{name: "ReservedStageName", df: "FROM busybox AS scratch\nFROM busybox AS context\n", all: true, want: []string{"ReservedStageName:1", "ReservedStageName:2"}},
	{name: "JSONArgsRecommended", df: "FROM busybox\nCMD sh -c true\nENTRYPOINT echo hi\n", want: []string{"JSONArgsRecommended:2", "JSONArgsRecommended:3"}},
	{name: "JSONArgsRecommended with SHELL", df: "FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nCMD echo hi\n", want: nil},
	{name: "MaintainerDeprecated", df: "FROM busybox\nMAINTAINER me@example.com\n", want: []string{"MaintainerDeprecated:2"}},
	{name: "UndefinedArgInFrom", df: "FROM busybox${TAG}\n", want: []string{"UndefinedArgInFrom:1"}},
	{name: "UndefinedArgInFrom declared", df: "ARG TAG\nFROM busybox${TAG}\n", want: nil},
	{name: "FROM platform args are predefined", df: "FROM --platform=$BUILDPLATFORM busybox\n", want: nil},
	{name: "WorkdirRelativePath", df: "FROM busybox\nWORKDIR app\nWORKDIR sub\n", want: []string{"WorkdirRelativePath:2"}},
	{name: "WorkdirRelativePath after the parent stage's", df: "FROM busybox AS p\nWORKDIR /app\nFROM p\nWORKDIR sub\n", want: nil},
	{name: "WorkdirRelativePath after absolute", df: "FROM busybox\nWORKDIR /app\nWORKDIR sub\n", want: nil},
	{name: "UndefinedVar", df: "FROM busybox\nENV A=$FOO\nCOPY $DIR /x\nRUN echo $NOT_CHECKED\n", want: []string{"UndefinedVar:2", "UndefinedVar:3"}},
	{name: "UndefinedVar defined", df: "FROM busybox\nARG DIR\nENV A=$PATH B=x\nENV C=$B\nCOPY $DIR /x\n", want: nil},
	{name: "UndefinedVar from parent stage", df: "FROM busybox AS p\nENV X=1\nFROM p\nENV Y=$X\n", want: nil},
	{name: "UndefinedVar global not redeclared", df: "ARG V=1\nFROM busybox\nENV Y=$V\n", want: []string{"UndefinedVar:3"}},
	{name: "MultipleInstructionsDisallowed", df: "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\nENTRYPOINT [\"c\"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n", want: []string{"MultipleInstructionsDisallowed:2", "MultipleInstructionsDisallowed:5"}},
	{name: "MultipleInstructionsDisallowed any case", df: "FROM busybox\nCMD [\"a\"]\ncmd [\"b\"]\n", want: []string{"MultipleInstructionsDisallowed:2", "ConsistentInstructionCasing:3"}},
	{name: "MultipleInstructionsDisallowed per stage", df: "FROM busybox AS a\nCMD [\"a\"]\nFROM a\nCMD [\"b\"]\n", want: nil},
	{name: "LegacyKeyValueFormat", df: "FROM busybox\nENV A 1\nLABEL b 2\nENV C=3\n", want: []string{"LegacyKeyValueFormat:2", "LegacyKeyValueFormat:3"}},
	{name: "InvalidDefaultArgInFrom", df: "ARG IMAGE\nFROM $IMAGE\n", buildArgs: map[string]string{"IMAGE": "busybox"}, want: []string{"InvalidDefaultArgInFrom:2"}},
	{name: "InvalidDefaultArgInFrom with default", df: "ARG IMAGE=busybox\nFROM $IMAGE\n", want: nil},
	{name: "FromPlatformFlagConstDisallowed", df: "FROM --platform=linux/amd64 busybox AS build\n", want: []string{"FromPlatformFlagConstDisallowed:1"}},
	{name: "FromPlatformFlagConstDisallowed named for it", df: "FROM --platform=linux/amd64 busybox AS build-amd64\n", want: nil},
	{name: "RedundantTargetPlatform", df: "FROM --platform=$TARGETPLATFORM busybox\n", want: []string{"RedundantTargetPlatform:1"}},
	{name: "CopyIgnoredFile", df: "FROM busybox\nCOPY secret.txt /\nADD ./logs/a.log /\nCOPY ok.txt /\n", excludes: []string{"secret.txt", "logs"}, want: []string{"CopyIgnoredFile:2", "CopyIgnoredFile:3"}},
	{name: "CopyIgnoredFile with exclusions", df: "FROM busybox\nCOPY secret.txt /\n", excludes: []string{"*.txt", "!keep.txt"}, want: nil},
	{name: "CopyIgnoredFile not from another stage", df: "FROM busybox AS a\nFROM busybox\nCOPY --from=a secret.txt /\n", excludes: []string{"secret.txt"}, want: nil},
	{name: "SecretsUsedInArgOrEnv", df: "FROM busybox\nARG API_TOKEN\nENV DB_PASSWORD=x\nENV PUBLIC_KEY=y\nARG TOKENIZER=1\n", want: []string{"SecretsUsedInArgOrEnv:2", "SecretsUsedInArgOrEnv:3"}},
	{name: "InvalidDefinitionDescription is experimental", df: "# check=experimental=all\n# bad comment\nFROM busybox AS base\n", want: []string{"InvalidDefinitionDescription:3"}},
	{name: "InvalidDefinitionDescription off by default", df: "# bad comment\nFROM busybox AS base\n", want: nil},
	{name: "unneeded stage not checked in a build", df: "FROM busybox AS unused\nMAINTAINER x\nENV A=$NOPE\nFROM busybox\n", want: []string{"MaintainerDeprecated:2"}},
	{name: "unresolvable base: other rules still run", df: "FROM nope AS a\nENV A=$X\nFROM busybox\nMAINTAINER x\n", all: true, want: []string{"MaintainerDeprecated:4"}},
	{name: "unneeded stage checked with --check", df: "FROM busybox AS unused\nENV A=$NOPE\nFROM busybox\n", all: true, want: []string{"UndefinedVar:2"}},
	{name: "ExposeProtoCasing", df: "FROM busybox\nEXPOSE 80/TCP 53/udp\n", want: []string{"ExposeProtoCasing:2"}},
	{name: "ExposeInvalidFormat", df: "FROM busybox\nEXPOSE 8080:80\nEXPOSE 127.0.0.1:80:80/tcp\nEXPOSE 80\n", want: []string{"ExposeInvalidFormat:2", "ExposeInvalidFormat:3"}},
	{name: "skip directive", df: "# check=skip=FromAsCasing,JSONArgsRecommended\nFROM busybox as base\nCMD echo\nMAINTAINER x\n", want: []string{"MaintainerDeprecated:4"}},
	{name: "skip above an instruction", df: "FROM busybox\n# check=skip=JSONArgsRecommended\nCMD echo\nENTRYPOINT echo\n", want: []string{"JSONArgsRecommended:4"}},
	{name: "skip all", df: "# check=skip=all\nFROM busybox as base\nCMD echo\n", want: nil},
	{name: "build arg replaces the directive", df: "# check=skip=all\nFROM busybox as base\nCMD echo\n", buildArgs: map[string]string{dockerfile.CheckBuildArg: "skip=JSONArgsRecommended"}, want: []string{"FromAsCasing:2"}},
}

func TestChecks(t *testing.T) {
	for _, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			opt := dockerfile.Options{Source: []byte(tc.df), BuildArgs: tc.buildArgs, Excludes: tc.excludes, Target: tc.target, TargetPlatform: amd64}
			res, err := Check(t.Context(), opt, busybox{}, Options{AllStages: tc.all})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range res.Warnings {
				got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Line))
				if w.Detail == "" || strings.Contains(w.Detail, "\n") || w.File != "Dockerfile" {
					t.Errorf("warning %+v: want a one-line detail and the file", w)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Check(%q) = %v, want %v", tc.df, got, tc.want)
			}
			if res.Err != nil {
				t.Errorf("Check(%q): error %v without error=true", tc.df, res.Err)
			}
		})
	}
}

func TestCheckErrorTrue(t *testing.T) {
	for _, tc := range []struct {
		df      string
		args    map[string]string
		wantErr bool
	}{
		{"# check=error=true\nFROM busybox as base\n", nil, true},
		{"# check=error=true\nFROM busybox AS base\n", nil, false},
		{"FROM busybox as base\n", map[string]string{dockerfile.CheckBuildArg: "error=true"}, true},
		{"# check=error=true;skip=FromAsCasing\nFROM busybox as base\n", nil, false},
	} {
		res, err := Check(t.Context(), dockerfile.Options{Source: []byte(tc.df), BuildArgs: tc.args, TargetPlatform: amd64}, busybox{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if (res.Err != nil) != tc.wantErr {
			t.Errorf("Check(%q, %v).Err = %v, want error %v", tc.df, tc.args, res.Err, tc.wantErr)
		}
	}
	if _, err := Check(t.Context(), dockerfile.Options{Source: []byte("# check=bogus\nFROM busybox\n"), TargetPlatform: amd64}, busybox{}, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("an invalid check option: error %v, want ErrOptions", err)
	}
}
