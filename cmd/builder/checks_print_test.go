package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
)

var sampleChecks = []build.CheckWarning{
	{Rule: "FromAsCasing", Description: "The 'as' keyword should match the case of the 'from' keyword", Detail: "'as' and 'FROM' keywords' casing do not match", File: "Dockerfile", Line: 1},
	{Rule: "MaintainerDeprecated", Description: "The MAINTAINER instruction is deprecated", Detail: "Maintainer instruction is deprecated in favor of using label", File: "Dockerfile", Line: 3},
}

func TestPrintChecks(t *testing.T) {
	var plain bytes.Buffer
	printChecks(&plain, "plain", sampleChecks)
	want := "2 warnings found:\n" +
		"WARNING: Dockerfile:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n" +
		"WARNING: Dockerfile:3: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n"
	if plain.String() != want {
		t.Errorf("printChecks(plain) =\n%s\nwant\n%s", plain.String(), want)
	}

	var raw bytes.Buffer
	printChecks(&raw, "rawjson", sampleChecks)
	lines := strings.Split(strings.TrimSpace(raw.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("printChecks(rawjson) wrote %d lines, want 2:\n%s", len(lines), raw.String())
	}
	var ev struct {
		Time, Kind, Rule, Detail, File string
		Line                           int
	}
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Kind != "warning" || ev.Rule != "MaintainerDeprecated" || ev.Line != 3 || ev.File != "Dockerfile" || ev.Time == "" {
		t.Errorf("rawjson event %s: %+v %v", lines[1], ev, err)
	}

	var none bytes.Buffer
	printChecks(&none, "plain", nil)
	if none.Len() != 0 {
		t.Errorf("printChecks without findings wrote %q", none.String())
	}

	bw := buildxWarnings(sampleChecks)
	short, _ := base64.StdEncoding.DecodeString(bw[0]["short"].(string))
	if string(short) != "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)" {
		t.Errorf("buildx warning short = %q", short)
	}
}
