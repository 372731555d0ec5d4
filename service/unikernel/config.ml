(* mirage >= 4.10.5 & < 4.12.0 *)

(* labctl's authentication unikernel (service/testdata/README.md has the
   HTTP contract). labctl copies this file, unikernel.ml and
   src/labctl_auth.ml{,i} flat into a build directory in dom0 and runs
   `mirage configure -t xen && make depend && make build` there: this
   directory is a dune project for the pure module's tests, and mirage
   would overwrite its dune files. *)

open Mirage

(* The users image: a tar of one file per user. On Xen the first
   block_of_file is device 51728, xvdb, which is where labctl's .xl puts
   the image; on unix it is the file "users" in the working directory. *)
let users = tar_kv_ro (block_of_file "users")

(* The lab's dnsmasq hands out (and pins) the guest's address: the stack
   must use DHCP. mirage turns DHCP on by default since 4.10.5
   (lib/devices/key.ml: `dhcp` defaults to true; 4.11.0 made it the
   `--no-dhcp` flag and removed generic_stackv4v6's ?dhcp_key and ?net_key,
   CHANGES.md), so the stack is built without keys: this one line compiles
   against both, and `mirage configure -t xen` gives DHCP. Versions before
   4.10.5 default to a static 10.0.0.2 and are refused by config.ml's first
   line and labctl's preflight. *)
let stack = generic_stackv4v6 default_network

(* Not named `http`: that would hide Mirage.http, the device type used in
   main's signature below. *)
let http_server = cohttp_server (conduit_direct ~tls:false stack)

let main =
  main "Unikernel.Main"
    ~packages:
      [
        (* 2.x takes strings; 1.x (Cstruct) predates mirage-crypto 1.0. *)
        package ~min:"2.0.0" "pbkdf";
        package "eqaf";
        package "mirage-kv";
        package "cohttp";
        package "logs";
        package "lwt";
      ]
    (kv_ro @-> http @-> job)

let () = register "auth" [ main $ users $ http_server ]
