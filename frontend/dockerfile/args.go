package dockerfile

import "github.com/moby/buildkit/frontend/dockerfile/instructions"

// declareArgs declares every name of a stage's ARG instruction, expanding
// defaults with the stage's variables; a valued ARG sets the variable.
func (c *converter) declareArgs(st *stageState, cmd *instructions.ArgCommand) error {
	for _, kv := range cmd.Args {
		var def *string
		if kv.Value != nil {
			v, err := c.expand(*kv.Value, st.env())
			if err != nil {
				return err
			}
			def = &v
		}
		st.args.Declare(kv.Key, def)
		c.consumed[kv.Key] = true
		if v, ok := st.args.Lookup(kv.Key); ok {
			st.setVar(kv.Key, v)
		}
	}
	return nil
}

// declareGlobals declares the names of an ARG before the first FROM.
func (c *converter) declareGlobals(cmd *instructions.ArgCommand) error {
	for _, kv := range cmd.Args {
		var def *string
		if kv.Value != nil {
			v, err := c.expand(*kv.Value, c.globals.Env())
			if err != nil {
				return err
			}
			def = &v
		}
		c.globals.Declare(kv.Key, def)
		c.consumed[kv.Key] = true
	}
	return nil
}
