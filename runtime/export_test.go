package runtime

// ExampleOperator is the path of the operator the runnable examples run:
// the WAT uppercase example (plugins/examples/wat), built by TestMain.
var ExampleOperator string
