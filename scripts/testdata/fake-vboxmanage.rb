#!/usr/bin/env ruby
# A stateful stand-in for VBoxManage, for the Vagrantfile's host-side
# tests. It keeps VirtualBox's host-only interfaces, host-only networks,
# DHCP servers and VMs in state.json next to itself, logs every argv to
# calls.log there, and prints `list` outputs in the layouts of the recorded
# real outputs in vmctl/vbox/testdata (a test renders those fixtures' state
# and compares byte for byte). Commands: --version; list hostonlyifs |
# hostonlynets | dhcpservers; hostonlyif create | ipconfig NAME --ip A
# --netmask M; dhcpserver modify (--network=N | --netname N | --interface=I)
# --enable|--disable; showvminfo VM --machinereadable. Anything else fails
# as VBoxManage does, with "VBoxManage: error:" on stderr.
require "json"

DIR = __dir__
STATE = File.join(DIR, "state.json")
File.open(File.join(DIR, "calls.log"), "a") { |f| f.puts ARGV.join(" ") }
state = JSON.parse(File.read(STATE))

def fail!(msg)
  warn "VBoxManage: error: #{msg}"
  exit 1
end

def save(state)
  File.write(STATE, JSON.pretty_generate(state))
end

def ifs_index(name)
  name[/\d+\z/].to_i
end

def render_hostonlyifs(ifs)
  ifs.map do |i|
    n = ifs_index(i["name"])
    ipv6 = i["ipv6"].to_s
    [
      "Name:            #{i["name"]}",
      format("GUID:            786f6276-656e-4%d74-8000-0a00270000%02x", n, n),
      "DHCP:            Disabled",
      "IPAddress:       #{i["ip"]}",
      "NetworkMask:     #{i["mask"]}",
      ipv6.empty? ? "IPV6Address:" : "IPV6Address:     #{ipv6}",
      "IPV6NetworkMaskPrefixLength: #{i.fetch("ipv6len", 0)}",
      format("HardwareAddress: 0a:00:27:00:00:%02x", n),
      "MediumType:      Ethernet",
      "Wireless:        No",
      "Status:          #{i.fetch("status", "Down")}",
      "VBoxNetworkName: HostInterfaceNetworking-#{i["name"]}",
      "",
    ].join("\n") + "\n"
  end.join
end

def render_dhcpservers(srvs)
  srvs.map do |s|
    <<~OUT
      NetworkName:    #{s["network"]}
      Dhcpd IP:       #{s["ip"]}
      LowerIPAddress: #{s["lower"]}
      UpperIPAddress: #{s["upper"]}
      NetworkMask:    #{s["mask"]}
      Enabled:        #{s["enabled"] ? "Yes" : "No"}
      Global Configuration:
          minLeaseTime:     default
          defaultLeaseTime: default
          maxLeaseTime:     default
          Forced options:   None
          Suppressed opts.: None
              1/legacy: #{s["mask"]}
      Groups:               None
      Individual Configs:   None
    OUT
  end.join("\n")
end

def render_hostonlynets(nets)
  nets.map do |n|
    <<~OUT
      Name:            #{n["name"]}
      GUID:            #{n["guid"]}

      State:           #{n.fetch("enabled", true) ? "Enabled" : "Disabled"}
      NetworkMask:     #{n["mask"]}
      LowerIP:         #{n["lower"]}
      UpperIP:         #{n["upper"]}
      VBoxNetworkName: hostonly-#{n["name"]}
    OUT
  end.join("\n")
end

# --flag=value or --flag value
def opt(args, *names)
  args.each_with_index do |a, i|
    names.each do |n|
      return a.split("=", 2)[1] if a.start_with?("#{n}=")
      return args[i + 1] if a == n
    end
  end
  nil
end

args = ARGV
case args[0]
when "--version", "-v"
  puts state.fetch("version")
when "list"
  case args[1]
  when "hostonlyifs" then print render_hostonlyifs((state["hostonlyifs"] || []))
  when "dhcpservers" then print render_dhcpservers((state["dhcpservers"] || []))
  when "hostonlynets" then print render_hostonlynets((state["hostonlynets"] || []))
  else fail!("fake: list #{args[1]} not modelled")
  end
when "hostonlyif"
  ifs = state["hostonlyifs"] ||= []
  case args[1]
  when "create"
    # The lowest free vboxnetN, as VirtualBox's Linux host driver picks it.
    n = 0
    n += 1 while ifs.any? { |i| i["name"] == "vboxnet#{n}" }
    ifs << { "name" => "vboxnet#{n}", "ip" => "192.168.#{56 + n}.1", "mask" => "255.255.255.0" }
    save(state)
    puts "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%"
    puts "Interface 'vboxnet#{n}' was successfully created"
  when "ipconfig"
    i = ifs.find { |x| x["name"] == args[2] } or fail!("could not find a host interface named '#{args[2]}'")
    ip, mask = opt(args, "--ip"), opt(args, "--netmask")
    fail!("fake: ipconfig needs --ip and --netmask") if ip.nil? || mask.nil?
    i["ip"], i["mask"] = ip, mask
    save(state)
  else fail!("fake: hostonlyif #{args[1]} not modelled")
  end
when "dhcpserver"
  fail!("fake: dhcpserver #{args[1]} not modelled") unless args[1] == "modify"
  net = opt(args, "--network", "--netname")
  if net.nil? && (ifname = opt(args, "--interface", "--ifname"))
    net = "HostInterfaceNetworking-#{ifname}"
  end
  s = (state["dhcpservers"] || []).find { |x| x["network"] == net } or fail!("DHCP server does not exist (#{net})")
  if args.include?("--disable")
    s["enabled"] = false
  elsif args.include?("--enable")
    s["enabled"] = true
  end
  save(state)
when "showvminfo"
  vm = (state["vms"] || {})[args[1]]
  if vm.nil?
    warn "VBoxManage: error: Could not find a registered machine named '#{args[1]}'"
    warn "VBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports"
    exit 1
  end
  puts "name=\"#{args[1]}\""
  vm.each { |k, v| puts "#{k}=\"#{v}\"" }
else
  fail!("fake: #{args.join(" ")} not modelled")
end
