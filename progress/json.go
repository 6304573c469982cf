package progress

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/builder-dev/builder/solver"
)

// jsonProgress writes one JSON object per solver event and line
// (--progress=rawjson). The fields, documented in the README:
//
//	time      RFC 3339 time with nanoseconds
//	kind      started, cached, completed, failed or log
//	step      the step's number in this build (as #N in plain output)
//	vertex    the step's digest
//	name      the step, e.g. "[build 2/4] RUN make"
//	duration  seconds, for completed and failed
//	reason    why a started step was not cached
//	data      a chunk of the step's output, for log
//	error     the failure, for failed
//	usage     what a step's processes used, from its cgroup, for completed
//	          and failed steps that ran one: cpu (seconds), peakMemory,
//	          readBytes, writeBytes (bytes; absent where not accounted)
type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

type jsonEvent struct {
	Time     string     `json:"time"`
	Kind     string     `json:"kind"`
	Step     int        `json:"step"`
	Vertex   string     `json:"vertex"`
	Name     string     `json:"name"`
	Duration float64    `json:"duration,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Data     string     `json:"data,omitempty"`
	Error    string     `json:"error,omitempty"`
	Usage    *jsonUsage `json:"usage,omitempty"`
}

type jsonUsage struct {
	CPU        float64 `json:"cpu"`
	PeakMemory uint64  `json:"peakMemory,omitempty"`
	ReadBytes  uint64  `json:"readBytes,omitempty"`
	WriteBytes uint64  `json:"writeBytes,omitempty"`
}

func newJSONProgress(w io.Writer) *jsonProgress { return &jsonProgress{enc: json.NewEncoder(w)} }

func (p *jsonProgress) Event(e solver.Event) {
	je := jsonEvent{
		Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: string(e.Kind), Step: e.Index,
		Vertex: e.Vertex.String(), Name: e.Name, Duration: e.Duration.Seconds(), Reason: e.Reason, Data: string(e.Data),
	}
	if e.Err != nil {
		je.Error = e.Err.Error()
	}
	if u := e.Usage; u != nil {
		je.Usage = &jsonUsage{CPU: u.CPU.Seconds(), PeakMemory: u.PeakMemory, ReadBytes: u.ReadBytes, WriteBytes: u.WriteBytes}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enc.Encode(je)
}
