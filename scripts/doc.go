// Package scripts holds the lab VM's provisioning scripts (run by the
// Vagrantfile) and the CI scripts; its tests lint and exercise them.
package scripts
