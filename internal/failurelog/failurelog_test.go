package failurelog

import (
	"testing"
	"time"
)

func TestSpell(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration // since t0
		ok   bool          // a success, not a failure
		want Note          // of a failure
		// of a success: whether it ends failures, and how long they lasted
		ended  bool
		lasted time.Duration
	}
	fail := func(at time.Duration, want Note) step { return step{at: at, want: want} }
	succeed := func(at time.Duration, ended bool, lasted time.Duration) step {
		return step{at: at, ok: true, ended: ended, lasted: lasted}
	}
	tests := []struct {
		name  string
		every time.Duration // the Spell's Every
		steps []step
	}{
		{"a success with nothing failing", 0, []step{
			succeed(0, false, 0),
		}},
		{"failures within a minute are logged once", 0, []step{
			fail(0, Note{First: true, Failures: 1}),
			fail(10*time.Second, Note{}),
			fail(59*time.Second, Note{}),
			succeed(70*time.Second, true, 70*time.Second),
		}},
		{"failures that go on are logged once a minute, counted", 0, []step{
			fail(0, Note{First: true, Failures: 1}),
			fail(40*time.Second, Note{}),
			fail(80*time.Second, Note{Again: true, For: 80 * time.Second, Failures: 2}),
			fail(120*time.Second, Note{}),
			fail(140*time.Second, Note{Again: true, For: 140 * time.Second, Failures: 2}),
			succeed(150*time.Second, true, 150*time.Second),
		}},
		{"a clock gone back logs again", 0, []step{
			fail(time.Minute, Note{First: true, Failures: 1}),
			fail(0, Note{Again: true, For: -time.Minute, Failures: 1}),
		}},
		{"a success ends the spell: the next failure is the first again", 0, []step{
			fail(0, Note{First: true, Failures: 1}),
			succeed(time.Second, true, time.Second),
			succeed(2*time.Second, false, 0),
			fail(3*time.Second, Note{First: true, Failures: 1}),
			fail(4*time.Second, Note{}),
		}},
		{"a spell's own Every", 10 * time.Minute, []step{
			fail(time.Minute, Note{First: true, Failures: 1}),
			fail(2*time.Minute, Note{}),
			fail(10*time.Minute, Note{}),
			fail(11*time.Minute, Note{Again: true, For: 10 * time.Minute, Failures: 3}),
			fail(12*time.Minute, Note{}),
			succeed(13*time.Minute, true, 12*time.Minute),
			fail(14*time.Minute, Note{First: true, Failures: 1}),
			fail(15*time.Minute, Note{}), // the success kept Every
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spell{Every: tt.every}
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				if st.ok {
					if lasted, ended := s.Succeeded(now); ended != st.ended || lasted != st.lasted {
						t.Errorf("step %d: Succeeded = %v, %v; want %v, %v", i, lasted, ended, st.lasted, st.ended)
					}
					continue
				}
				if got := s.Failed(now); got != st.want {
					t.Errorf("step %d: Failed = %+v; want %+v", i, got, st.want)
				}
			}
		})
	}
}
