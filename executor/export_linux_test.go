package executor

// UseMountpointLayer lets the external tests turn the layer of mountpoints
// on (dir) and off ("") without an init binary.
var UseMountpointLayer = useMountpointLayer
