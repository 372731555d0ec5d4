(* mirage >= 4.9.0 & < 4.12.0 *)

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

(* The lab's dnsmasq hands out (and pins) the guest's address, so Xen
   guests use DHCP whatever --dhcp says; mirage's own default is off. *)
let dhcp_on_xen =
  Key.(pure (function `Xen -> true | _ -> false) $ value target)

let stack = generic_stackv4v6 ~dhcp_key:dhcp_on_xen default_network
let http = cohttp_server (conduit_direct ~tls:false stack)

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

let () = register "auth" [ main $ users $ http ]
