// Package buildinfo says which spcheck built a report or a trace: the version stamped at link
// time, else the module version go install recorded, else the VCS revision a build from a clone
// recorded, else "dev". Reports print it and trace writers record it as the producer version.
package buildinfo
