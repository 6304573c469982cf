package exporter

// SetBeforeRecords sets what runs between an assembly's blob commit and
// its records' transaction (nil: nothing).
func SetBeforeRecords(fn func()) { beforeRecords = fn }
