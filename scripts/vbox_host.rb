# Host-side helpers for the Vagrantfile: the VirtualBox preflight, turning
# off VirtualBox's own DHCP server on the lab network, and building labctl
# for the VM. Plain Ruby (no Vagrant API) so that it can be run and tested
# on its own:
#
#   ruby scripts/vbox_host.rb preflight 192.168.77.0/24
#   ruby scripts/vbox_host.rb dhcp-off 192.168.77.0/24
#
# LABCTL_VBOXMANAGE and LABCTL_VBOX_NETWORKS_CONF override the VBoxManage
# command and the networks.conf path (the tests point them at fakes).

require "ipaddr"
require "open3"
require "fileutils"

module LabctlHost
  NETWORKS_CONF = "/etc/vbox/networks.conf"
  # What VirtualBox >= 6.1.28 allows when networks.conf does not exist.
  DEFAULT_RANGES = ["192.168.56.0/21", "fe80::/10"].freeze
  HOSTONLY_PREFIX = "HostInterfaceNetworking-"

  module_function

  def vboxmanage
    ENV.fetch("LABCTL_VBOXMANAGE", "VBoxManage")
  end

  def networks_conf_path
    ENV.fetch("LABCTL_VBOX_NETWORKS_CONF", NETWORKS_CONF)
  end

  # Runs VBoxManage; returns [stdout, ok] or nil when it cannot be run.
  def vbox(*args)
    out, err, st = Open3.capture3(vboxmanage, *args)
    [out, st.success?, err]
  rescue SystemCallError
    nil
  end

  # The version is the last line like 7.0.14r161095 or 5.1.6_Debianr110634:
  # warnings (vboxdrv not loaded) come first.
  def parse_version(out)
    out.to_s.lines.reverse_each do |line|
      m = line.strip.match(/\A(\d+)\.(\d+)\.(\d+)(?:_[A-Za-z0-9]+?)?(?:r\d+)?\z/)
      return [m[1].to_i, m[2].to_i, m[3].to_i] if m
    end
    nil
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
  # to abort with; its last line is the one command that fixes it.
  def preflight(subnet_s)
    subnet = IPAddr.new(subnet_s)
    res = vbox("--version")
    return nil if res.nil? # no VirtualBox: Vagrant's own check says so
    ver = parse_version(res[0])
    if ver.nil?
      return "labctl: cannot read the VirtualBox version from `#{vboxmanage} --version`:\n#{res[0]}#{res[2]}"
    end
    vs = ver.join(".")
    if (ver <=> [6, 1, 0]) < 0
      return "labctl: VirtualBox #{vs} cannot give the VM nested VT-x (--nested-hw-virt), which Xen's PVH guests need. Fix: install VirtualBox 6.1 or later."
    end
    return nil if (ver <=> [6, 1, 28]) < 0

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
  end

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

  # Enabled VirtualBox DHCP servers serving the subnet: by the host-only
  # interface holding it, and by address (a server left behind for a
  # removed vboxnetN returns when Vagrant recreates that name).
  def dhcp_servers_on(subnet_s)
    subnet = IPAddr.new(subnet_s)
    ifs = vbox("list", "hostonlyifs")
    srvs = vbox("list", "dhcpservers")
    return [] if ifs.nil? || srvs.nil? || !srvs[1]
    names = parse_blocks(ifs[0], "Name").select do |b|
      p = block_prefix(b["ipaddress"], b["networkmask"])
      p && p == subnet
    end.map { |b| b["vboxnetworkname"] || "#{HOSTONLY_PREFIX}#{b["name"]}" }
    parse_blocks(srvs[0], "NetworkName").select do |s|
      next false unless s["enabled"].to_s.casecmp?("yes")
      p = block_prefix(s["dhcpd ip"] || s["ip"], s["networkmask"])
      names.include?(s["networkname"]) || (p && (p.include?(subnet) || subnet.include?(p)))
    end.map { |s| s["networkname"] }
  end

  # Disables them; returns the names disabled. Raises on failure.
  def dhcp_off!(subnet_s)
    dhcp_servers_on(subnet_s).each do |name|
      out, ok, err = vbox("dhcpserver", "modify", "--network=#{name}", "--disable")
      raise "VBoxManage dhcpserver modify --network=#{name} --disable failed: #{out}#{err}" unless ok
    end
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
  cmd, subnet = ARGV
  case cmd
  when "preflight"
    msg = LabctlHost.preflight(subnet)
    if msg
      warn msg
      exit 1
    end
    puts "ok"
  when "dhcp-off"
    names = LabctlHost.dhcp_off!(subnet)
    puts(names.empty? ? "none" : names.join("\n"))
  else
    warn "usage: #{$PROGRAM_NAME} preflight|dhcp-off SUBNET"
    exit 2
  end
end
