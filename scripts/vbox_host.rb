# Host-side helpers for the Vagrantfile: finding VBoxManage, the VirtualBox
# and Vagrant version gate, the networks.conf preflight, the lab's host-only
# network with VirtualBox's own DHCP server off before the VM starts, the
# after-up check, and building labctl for the VM. Plain Ruby (no Vagrant
# API) so that it can be run and tested on its own:
#
#   ruby scripts/vbox_host.rb find-vboxmanage
#   ruby scripts/vbox_host.rb gate VAGRANT_VERSION
#   ruby scripts/vbox_host.rb preflight 192.168.77.0/24 [VAGRANT_VERSION]
#   ruby scripts/vbox_host.rb prepare 192.168.77.0/24 [VAGRANT_VERSION]
#   ruby scripts/vbox_host.rb check-up 192.168.77.0/24 VM [ADAPTER]
#   ruby scripts/vbox_host.rb dhcp-off 192.168.77.0/24
#
# LABCTL_VBOXMANAGE overrides the VBoxManage found; LABCTL_VBOX_NETWORKS_CONF
# the networks.conf path; LABCTL_HOST_OS the host (RbConfig host_os, e.g.
# "mingw32", "darwin23"). The tests point them at fakes.
#
# Vagrant's behaviour copied here is read from hashicorp/vagrant at v2.4.9
# (plugins/providers/virtualbox/...): each rule cites its file.

require "ipaddr"
require "open3"
require "fileutils"
require "rbconfig"

module LabctlHost
  NETWORKS_CONF = "/etc/vbox/networks.conf"
  # What VirtualBox >= 6.1.28 allows when networks.conf does not exist
  # (action/network.rb HOSTONLY_DEFAULT_RANGE).
  DEFAULT_RANGES = ["192.168.56.0/21", "fe80::/10"].freeze
  HOSTONLY_PREFIX = "HostInterfaceNetworking-"

  # The Vagrant release that first drives each VirtualBox minor: its
  # driver enters plugins/providers/virtualbox/driver/meta.rb's driver_map,
  # and an older Vagrant refuses the provider ("not supported by this
  # version of Vagrant") before any trigger runs. hashicorp/vagrant
  # CHANGELOG.md @ v2.4.9: 2.2.7 "Add VirtualBox provider support for
  # version 6.1.x [GH-11250]", 2.3.2 "Add support for VirtualBox 7.0
  # [GH-12947]", 2.4.2 "... 7.1 [GH-13513]", 2.4.9 "... 7.2 [GH-13709]".
  VAGRANT_FOR_VBOX = {
    [6, 1] => "2.2.7",
    [7, 0] => "2.3.2",
    [7, 1] => "2.4.2",
    [7, 2] => "2.4.9",
  }.freeze
  # macOS with VirtualBox 7 puts private networks on host-only *networks*
  # (driver/version_7_0.rb use_host_only_nets?); 2.3.2 broke them there:
  # CHANGELOG 2.3.3 "Fix `:private_network` support for VirtualBox 7 on
  # macOS [GH-12983]". 2.3.3 is also the first whose validate_hostonly_ip!
  # skips networks.conf on macOS with VirtualBox >= 7.
  VAGRANT_FOR_VBOX7_DARWIN = "2.3.3"

  # A message to abort with; the last line is the fix.
  class Error < StandardError; end

  # Where messages go: info to stdout, warnings to stderr.
  class Log
    def info(msg)
      $stdout.puts(msg)
    end

    def warn(msg)
      $stderr.puts(msg)
    end
  end

  module_function

  # ---- the host platform, as Vagrant::Util::Platform sees it ----------
  # (lib/vagrant/util/platform.rb: platform = RbConfig host_os, downcased;
  # windows? is mingw or mswin; darwin? contains "darwin").

  def host_os
    (ENV["LABCTL_HOST_OS"] || RbConfig::CONFIG["host_os"]).to_s.downcase
  end

  def windows?(os = host_os)
    %w[mingw mswin].any? { |t| os.include?(t) }
  end

  def cygwin?(os = host_os)
    os.include?("cygwin")
  end

  def darwin?(os = host_os)
    os.include?("darwin")
  end

  # ---- VBoxManage --------------------------------------------------------

  def which(name, env = ENV, os = host_os)
    exts = [""]
    exts += env.fetch("PATHEXT", ".EXE").split(";").map(&:downcase) if windows?(os) || cygwin?(os)
    env.fetch("PATH", "").split(File::PATH_SEPARATOR).each do |dir|
      next if dir.empty?
      exts.each do |ext|
        p = File.join(dir, name + ext)
        return p if File.file?(p) && File.executable?(p)
      end
    end
    nil
  end

  # VBoxManage the way Vagrant finds it (driver/base.rb initialize): PATH
  # first; on Windows (and Cygwin) then each directory of VBOX_INSTALL_PATH,
  # else VBOX_MSI_INSTALL_PATH (the VirtualBox installer sets the latter;
  # ";"-separated), then the default install folders. nil when not found.
  def find_vboxmanage(env = ENV, os = host_os)
    override = env["LABCTL_VBOXMANAGE"].to_s
    return override unless override.empty?
    found = which("VBoxManage", env, os)
    return found if found
    return nil unless windows?(os) || cygwin?(os)
    vboxmanage_candidates(env).find { |p| File.file?(p) }
  end

  def vboxmanage_candidates(env = ENV)
    dirs = (env["VBOX_INSTALL_PATH"] || env["VBOX_MSI_INSTALL_PATH"]).to_s.split(";")
    drive = env["SYSTEMDRIVE"] || "C:"
    dirs += ["#{drive}/Program Files/Oracle/VirtualBox", "#{drive}/Program Files (x86)/Oracle/VirtualBox"]
    dirs << "#{env["PROGRAMFILES"]}/Oracle/VirtualBox" if env["PROGRAMFILES"]
    dirs.reject(&:empty?).map { |d| File.join(d.sub(%r{[\\/]+\z}, ""), "VBoxManage.exe") }
  end

  def vboxmanage
    find_vboxmanage || "VBoxManage"
  end

  def networks_conf_path
    ENV.fetch("LABCTL_VBOX_NETWORKS_CONF", NETWORKS_CONF)
  end

  # Runs VBoxManage; returns [stdout, ok, stderr], or nil when it cannot be
  # found or run.
  def vbox(*args)
    path = find_vboxmanage
    return nil if path.nil?
    out, err, st = Open3.capture3(path, *args)
    [out, st.success?, err]
  rescue SystemCallError
    nil
  end

  def vbox!(*args)
    res = vbox(*args)
    raise Error, "labctl: cannot run #{vboxmanage} #{args.join(" ")}" if res.nil?
    out, ok, err = res
    raise Error, "labctl: `VBoxManage #{args.join(" ")}` failed:\n#{out}#{err}" unless ok
    out
  end

  # What to run by hand when VBoxManage cannot be found: a silent skip
  # would leave two DHCP servers racing on the lab network.
  def not_found_message(subnet_s)
    subnet = IPAddr.new(subnet_s)
    host_ip = (subnet | 1).to_s
    where = "not on PATH"
    if windows? || cygwin?
      where += ", nor in VBOX_INSTALL_PATH, VBOX_MSI_INSTALL_PATH or the default folders: " +
               vboxmanage_candidates.map { |p| File.dirname(p) }.uniq.join("; ")
    end
    <<~MSG.chomp
      labctl: WARNING: cannot find VBoxManage (#{where}).
      labctl cannot check VirtualBox or turn off its own DHCP server on the lab network #{subnet}/#{subnet.prefix}:
      a fresh VirtualBox has one enabled (HostInterfaceNetworking-vboxnet0), and it then answers the guests alongside dom0's dnsmasq.
      Set LABCTL_VBOXMANAGE to VBoxManage's full path, or do it by hand after `vagrant up`:
        VBoxManage list hostonlyifs      # the VBoxNetworkName: of the interface with IPAddress: #{host_ip}
        VBoxManage dhcpserver modify --network="<that VBoxNetworkName>" --disable
        vagrant reload
    MSG
  end

  # ---- versions ------------------------------------------------------------

  # The version is the last line like 7.0.14r161095 or 5.1.6_Debianr110634:
  # warnings (vboxdrv not loaded) come first.
  def parse_version(out)
    out.to_s.lines.reverse_each do |line|
      m = line.strip.match(/\A(\d+)\.(\d+)\.(\d+)(?:_[A-Za-z0-9]+?)?(?:r\d+)?\z/)
      return [m[1].to_i, m[2].to_i, m[3].to_i] if m
    end
    nil
  end

  def vagrant_version_parts(s)
    m = s.to_s.match(/\A(\d+)\.(\d+)\.(\d+)/)
    m && [m[1].to_i, m[2].to_i, m[3].to_i]
  end

  # The minimum Vagrant for this VirtualBox on this host, or nil when
  # labctl knows none (older than 6.1 fails elsewhere; newer than the
  # table: Vagrant's own check decides).
  def vagrant_minimum(ver, os = host_os)
    min = VAGRANT_FOR_VBOX[ver[0, 2]]
    return nil if min.nil?
    if darwin?(os) && ver[0] >= 7 && (vagrant_version_parts(min) <=> vagrant_version_parts(VAGRANT_FOR_VBOX7_DARWIN)) < 0
      min = VAGRANT_FOR_VBOX7_DARWIN
    end
    min
  end

  # nil when this Vagrant can drive this VirtualBox, else the message.
  def vagrant_gate(ver, vagrant_version, os = host_os)
    min = vagrant_minimum(ver, os)
    have = vagrant_version_parts(vagrant_version)
    return nil if min.nil? || have.nil?
    return nil if (have <=> vagrant_version_parts(min)) >= 0
    table = VAGRANT_FOR_VBOX.map { |k, v| "#{k.join(".")} from #{v}" }.join(", ")
    "labctl: VirtualBox #{ver.join(".")} needs Vagrant >= #{min}; this is Vagrant #{vagrant_version} " \
      "(Vagrant drives VirtualBox #{table}; 7.x on macOS from #{VAGRANT_FOR_VBOX7_DARWIN}). Fix:\n" \
      "install Vagrant #{min} or later: https://developer.hashicorp.com/vagrant/install"
  end

  # The installed VirtualBox version, or nil when VBoxManage is missing.
  # Raises Error when it runs but prints no version.
  def vbox_version
    res = vbox("--version")
    return nil if res.nil?
    ver = parse_version(res[0])
    raise Error, "labctl: cannot read the VirtualBox version from `#{vboxmanage} --version`:\n#{res[0]}#{res[2]}" if ver.nil?
    ver
  end

  # The gate the Vagrantfile runs when it is loaded: Vagrant checks the
  # VirtualBox version when it sets the provider up, before any trigger, and
  # its message does not say which Vagrant to install. Silent (nil) when
  # VBoxManage is missing: the triggers say that, and `vagrant validate`
  # needs no VirtualBox.
  def load_time_gate(vagrant_version)
    ver = vbox_version
    ver && vagrant_gate(ver, vagrant_version)
  rescue Error
    nil
  end

  # ---- networks.conf ----------------------------------------------------

  # Vagrant's own condition (action/network.rb validate_hostonly_ip!):
  # VirtualBox >= 6.1.28, not on Windows, and not on macOS with VirtualBox
  # >= 7.0.0 (host-only networks there).
  def networks_conf_enforced?(ver, os = host_os)
    return false if (ver <=> [6, 1, 28]) < 0
    return false if windows?(os)
    return false if darwin?(os) && (ver <=> [7, 0, 0]) >= 0
    true
  end

  # macOS with VirtualBox 7 attaches private networks to host-only
  # networks (`hostonlynet`), not vboxnetN interfaces (driver/version_7_0.rb
  # use_host_only_nets?: darwin? and version >= 7).
  def hostonly_nets?(ver, os = host_os)
    darwin?(os) && ver[0] >= 7
  end

  # Ranges from networks.conf lines "* <prefix> ..."; nil when the file is
  # absent (the defaults apply). Raises ArgumentError on a bad prefix.
  def networks_conf_ranges(path)
    return nil unless File.exist?(path)
    ranges = []
    File.readlines(path).each_with_index do |line, i|
      fields = line.split
      next if fields.empty? || fields[0] != "*"
      fields[1..].each do |f|
        begin
          ranges << IPAddr.new(f)
        rescue IPAddr::Error
          raise ArgumentError, "#{path} line #{i + 1}: bad range #{f.inspect}"
        end
      end
    end
    ranges
  end

  def contains?(range, subnet)
    range.family == subnet.family && range.prefix <= subnet.prefix && range.include?(subnet)
  end

  # Returns nil when the host is fit for the lab network, else the message
  # to abort with; its last line is the one command that fixes it. With a
  # Vagrant version, the version gate too.
  def preflight(subnet_s, vagrant_version = nil)
    subnet = IPAddr.new(subnet_s)
    ver = vbox_version
    return nil if ver.nil? # no VBoxManage: prepare! warns
    vs = ver.join(".")
    if (ver <=> [6, 1, 0]) < 0
      return "labctl: VirtualBox #{vs} cannot give the VM nested VT-x (--nested-hw-virt), which Xen's PVH guests need. Fix: install VirtualBox 6.1 or later."
    end
    gate = vagrant_version && vagrant_gate(ver, vagrant_version)
    return gate if gate
    return nil unless networks_conf_enforced?(ver)

    path = networks_conf_path
    ranges = networks_conf_ranges(path)
    source = path
    if ranges.nil?
      ranges = DEFAULT_RANGES.map { |r| IPAddr.new(r) }
      source = "the default without #{path}"
    end
    return nil if ranges.any? { |r| contains?(r, subnet) }
    shown = ranges.map { |r| "#{r}/#{r.prefix}" }.join(" ")
    shown = "nothing" if shown.empty?
    fix = "echo '* #{subnet}/#{subnet.prefix}' | sudo tee -a #{NETWORKS_CONF}"
    "labctl: VirtualBox #{vs} allows host-only networks only in #{shown} (#{source}), not #{subnet}/#{subnet.prefix}. Fix:\n#{fix}"
  rescue ArgumentError => e
    "labctl: #{e.message}. Fix:\necho '* #{subnet_s}' | sudo tee -a #{NETWORKS_CONF}"
  rescue Error => e
    e.message
  end

  # ---- VBoxManage list outputs -----------------------------------------

  # "Key: value" blocks of `VBoxManage list ...`, a block starting at
  # start_key; indented lines (nested configuration) are skipped.
  def parse_blocks(out, start_key)
    blocks = []
    out.to_s.each_line do |line|
      next if line.strip.empty? || line.start_with?(" ", "\t")
      key, value = line.split(":", 2)
      next if value.nil?
      key = key.strip.downcase
      blocks << {} if key == start_key.downcase
      blocks.last[key] = value.strip unless blocks.empty?
    end
    blocks
  end

  def block_prefix(ip, mask)
    return nil if ip.to_s.empty? || mask.to_s.empty?
    IPAddr.new("#{ip}/#{mask}")
  rescue IPAddr::Error
    nil
  end

  # The host-only interfaces Vagrant would attach the lab's adapter to:
  # action/network.rb hostonly_find_matching_network compares network
  # addresses (the interface's address under its own mask against the
  # VM's under the configured one).
  def lab_interfaces(subnet_s, ifs_out)
    subnet = IPAddr.new(subnet_s)
    parse_blocks(ifs_out, "Name").select do |b|
      p = block_prefix(b["ipaddress"], b["networkmask"])
      p && p.to_s == subnet.to_s
    end
  end

  def network_name(iface)
    iface["vboxnetworkname"].to_s.empty? ? "#{HOSTONLY_PREFIX}#{iface["name"]}" : iface["vboxnetworkname"]
  end

  # Enabled VirtualBox DHCP servers serving the subnet: by the host-only
  # interface holding it (or the names given), and by address (a server
  # left behind for a removed vboxnetN returns when Vagrant recreates
  # that name).
  def dhcp_servers_on(subnet_s, extra_names = [])
    subnet = IPAddr.new(subnet_s)
    ifs = vbox!("list", "hostonlyifs")
    srvs = vbox!("list", "dhcpservers")
    names = lab_interfaces(subnet_s, ifs).map { |b| network_name(b) } + extra_names
    parse_blocks(srvs, "NetworkName").select do |s|
      next false unless s["enabled"].to_s.casecmp?("yes")
      p = block_prefix(s["dhcpd ip"] || s["ip"], s["networkmask"])
      names.include?(s["networkname"]) || (p && (p.include?(subnet) || subnet.include?(p)))
    end.map { |s| s["networkname"] }
  end

  # Disables them; returns the names disabled. Raises on failure.
  def dhcp_off!(subnet_s, extra_names = [])
    raise Error, not_found_message(subnet_s) if find_vboxmanage.nil?
    dhcp_servers_on(subnet_s, extra_names).each do |name|
      out, ok, err = vbox("dhcpserver", "modify", "--network=#{name}", "--disable")
      raise Error, "labctl: VBoxManage dhcpserver modify --network=#{name} --disable failed: #{out}#{err}" unless ok
    end
  end

  # ---- before up: the lab's host-only network, DHCP off ------------------
  #
  # Why here: Vagrant picks or creates the host-only interface inside `up`
  # (action/network.rb hostonly_adapter, in action_boot right before Boot);
  # no trigger runs between that and the VM starting, and VirtualBox starts
  # the network's DHCP server (VBoxNetDHCP) with the VM. A fresh install
  # keeps an enabled server for HostInterfaceNetworking-vboxnet0 (network.rb
  # DEFAULT_DHCP_SERVER_FROM_VBOX_INSTALL) and the first interface created
  # is vboxnet0, so an after-up fix comes too late and a before-up one finds
  # nothing to match. So the before-up trigger makes the interface itself,
  # exactly as Vagrant would (driver/version_5_0.rb create_host_only_network:
  # `hostonlyif create`, then `hostonlyif ipconfig NAME --ip --netmask`),
  # at the address Vagrant looks for (network.rb: the network's first
  # address), and turns its DHCP server off; Vagrant then finds and reuses
  # it (hostonly_find_matching_network). The interface is the one Vagrant
  # would have made, and outlives the VM just as Vagrant's does (config.rb:
  # destroy_unused_network_interfaces defaults to false).
  def prepare!(subnet_s, vagrant_version = nil, log = Log.new)
    if find_vboxmanage.nil?
      log.warn(not_found_message(subnet_s))
      return
    end
    msg = preflight(subnet_s, vagrant_version)
    raise Error, msg if msg
    ver = vbox_version
    if hostonly_nets?(ver)
      check_hostonly_nets!(subnet_s)
      return
    end
    subnet = IPAddr.new(subnet_s)
    host_ip = (subnet | 1).to_s
    netmask = IPAddr.new("255.255.255.255").mask(subnet.prefix).to_s
    ifs = lab_interfaces(subnet_s, vbox!("list", "hostonlyifs"))
    if ifs.empty?
      out = vbox!("hostonlyif", "create")
      name = out[/^Interface '(.+?)' was successfully created$/, 1]
      raise Error, "labctl: `VBoxManage hostonlyif create` named no interface:\n#{out}" if name.nil?
      vbox!("hostonlyif", "ipconfig", name, "--ip", host_ip, "--netmask", netmask)
      log.info("labctl: created host-only interface #{name} with #{host_ip}/#{subnet.prefix} for the lab, before Vagrant would (it reuses it)")
    end
    dhcp_off!(subnet_s).each do |n|
      log.info("labctl: disabled VirtualBox DHCP server #{n} (dom0's dnsmasq serves #{subnet}/#{subnet.prefix}); `VBoxManage dhcpserver modify --network=#{n} --enable` undoes it; a VM already running keeps it until `vagrant reload`")
    end
    left = dhcp_servers_on(subnet_s)
    raise Error, "labctl: VirtualBox DHCP server #{left.join(", ")} is still enabled on the lab network. Fix:\nVBoxManage dhcpserver modify --network=#{left.first} --disable" unless left.empty?
  end

  # `list hostonlynets` records whose network is the subnet.
  def lab_hostonly_nets(subnet_s, out)
    subnet = IPAddr.new(subnet_s)
    parse_blocks(out, "Name").select do |n|
      p = block_prefix(n["lowerip"], n["networkmask"])
      p && p.to_s == subnet.to_s
    end
  end

  # A host-only network serves DHCP over its LowerIP..UpperIP range. For a
  # static private network Vagrant creates one whose range is the network
  # address alone (driver/version_7_0.rb create_host_only_network), which
  # leases nothing; an existing one it reuses may lease real addresses.
  # The fix uses VBoxManage 7's `hostonlynet modify <--name=netname |
  # --id=netid> [--lower-ip=address] [--upper-ip=address]` (its usage text).
  def check_hostonly_nets!(subnet_s, hint = nil)
    subnet = IPAddr.new(subnet_s)
    net = subnet.to_s
    lab_hostonly_nets(subnet_s, vbox!("list", "hostonlynets")).each do |n|
      next if n["lowerip"] == net && n["upperip"] == net
      raise Error, "labctl: VirtualBox host-only network #{n["name"]} leases #{n["lowerip"]}-#{n["upperip"]} on the lab network " \
                   "#{subnet}/#{subnet.prefix}, alongside dom0's dnsmasq.#{hint} Fix:\n" \
                   "VBoxManage hostonlynet modify --name=#{n["name"]} --lower-ip=#{net} --upper-ip=#{net}"
    end
  end

  # ---- after up: nothing else may serve the lab network ------------------

  # The adapter's host-only attachment from `showvminfo --machinereadable`
  # (hostonlyadapterN="vboxnet0"; 7.x networks: hostonly-networkN=...).
  def vm_attachment(vm, adapter)
    res = vbox("showvminfo", vm, "--machinereadable")
    return nil if res.nil? || !res[1]
    res[0].each_line do |line|
      m = line.match(/\A(hostonlyadapter|hostonly-network)#{adapter}="(.*)"\s*\z/)
      return m[2] if m
    end
    nil
  end

  # Fails loudly when VirtualBox's DHCP server serves the lab network now
  # that the VM runs: it is running, and disabling it takes effect at the
  # VM's next start. The before-up trigger makes this the exception (a
  # server enabled by hand, a different interface chosen).
  def check_up!(subnet_s, vm, adapter = 2, log = Log.new)
    if find_vboxmanage.nil?
      log.warn(not_found_message(subnet_s))
      return
    end
    ver = vbox_version
    hint = " It is running now: after the fix, `vagrant reload` before `labctl deploy`."
    if hostonly_nets?(ver)
      check_hostonly_nets!(subnet_s, hint)
      return
    end
    names = []
    if (ifname = vm_attachment(vm, adapter))
      ifs = parse_blocks(vbox!("list", "hostonlyifs"), "Name")
      iface = ifs.find { |b| b["name"] == ifname } || { "name" => ifname }
      names << network_name(iface)
    end
    off = dhcp_off!(subnet_s, names)
    return if off.empty?
    raise Error, "labctl: VirtualBox DHCP server #{off.join(", ")} was enabled on the lab network and is running with the VM: " \
                 "guests may take its lease instead of dnsmasq's. labctl disabled it; it stops when the VM restarts. Fix:\nvagrant reload"
  end

  # Puts a linux/amd64 labctl at out: $LABCTL_BINARY if set, else built
  # from the checkout with the host's Go. Returns a message on failure.
  def build_labctl(root, out)
    FileUtils.mkdir_p(File.dirname(out))
    if (bin = ENV["LABCTL_BINARY"]) && !bin.empty?
      return "labctl: LABCTL_BINARY=#{bin} does not exist" unless File.file?(bin)
      FileUtils.cp(bin, out)
      File.chmod(0o755, out)
      return nil
    end
    env = { "CGO_ENABLED" => "0", "GOOS" => "linux", "GOARCH" => "amd64" }
    ok = begin
      system(env, "go", "build", "-trimpath", "-o", out, "./cmd/labctl", chdir: root)
    rescue SystemCallError
      nil
    end
    return nil if ok
    "labctl: cannot build labctl for the VM (`GOOS=linux GOARCH=amd64 go build ./cmd/labctl` in #{root}). Fix: install Go (see go.mod) or point LABCTL_BINARY at a linux/amd64 labctl build."
  end
end

if $PROGRAM_NAME == __FILE__
  cmd, arg1, arg2, arg3 = ARGV
  begin
    case cmd
    when "find-vboxmanage"
      path = LabctlHost.find_vboxmanage
      abort "labctl: VBoxManage not found" if path.nil?
      puts path
    when "gate"
      msg = LabctlHost.load_time_gate(arg1)
      abort msg if msg
      puts "ok"
    when "preflight"
      msg = LabctlHost.preflight(arg1, arg2)
      abort msg if msg
      puts "ok"
    when "prepare"
      LabctlHost.prepare!(arg1, arg2)
    when "check-up"
      LabctlHost.check_up!(arg1, arg2, (arg3 || 2).to_i)
    when "dhcp-off"
      names = LabctlHost.dhcp_off!(arg1)
      puts(names.empty? ? "none" : names.join("\n"))
    else
      warn "usage: #{$PROGRAM_NAME} find-vboxmanage | gate VAGRANT_VERSION | preflight|prepare SUBNET [VAGRANT_VERSION] | check-up SUBNET VM [ADAPTER] | dhcp-off SUBNET"
      exit 2
    end
  rescue LabctlHost::Error => e
    abort e.message
  end
end
