(* Mirage glue only: read the users store, hand each request line to
   Labctl_auth (pure, tested with dune), write its answer back. *)

open Lwt.Infix

let src = Logs.Src.create "auth" ~doc:"labctl authentication service"

module Log = (val Logs.src_log src : Logs.LOG)

let port = 8088

(* pbkdf >= 2.0 (strings, digestif). The dune tests use Debian's pbkdf 1.x
   through the same Labctl_auth.kdf type. *)
let kdf ~password ~salt ~count ~dk_len =
  Pbkdf.pbkdf2 ~prf:`SHA256 ~password ~salt ~count ~dk_len:(Int32.of_int dk_len)

module Main (Users : Mirage_kv.RO) (Http : Cohttp_mirage.Server.S) = struct
  let read users name =
    Users.get users (Mirage_kv.Key.v name) >|= function
    | Ok s -> Some s
    | Error (`Not_found _) -> None
    | Error e ->
        Log.err (fun m -> m "users store: %s: %a" name Users.pp_error e);
        None

  (* Every credential once at boot: the highest iteration count is what
     each request pays, so timing tells nothing about the store. *)
  let load users =
    Users.list users Mirage_kv.Key.empty >>= function
    | Error e ->
        Log.err (fun m -> m "users store: %a" Users.pp_error e);
        Lwt.return []
    | Ok entries ->
        Lwt_list.filter_map_s
          (fun (key, kind) ->
            let name = Mirage_kv.Key.basename key in
            match kind with
            | `Dictionary -> Lwt.return_none
            | `Value when not (Labctl_auth.valid_name name) ->
                Log.warn (fun m -> m "users store: ignoring %S: not a user name" name);
                Lwt.return_none
            | `Value -> (
                read users name >|= function
                | None -> None
                | Some s -> (
                    match Labctl_auth.parse_credential s with
                    | Ok c -> Some c
                    | Error e ->
                        Log.warn (fun m -> m "users store: %s: %s" name e);
                        None)))
          entries

  let start users http =
    load users >>= fun creds ->
    let cost = Labctl_auth.cost_of creds in
    let auth = Labctl_auth.create ~kdf ~cost in
    Log.info (fun m ->
        m "%d users; every login costs %d PBKDF2 iterations" (List.length creds) cost);
    let callback _conn req _body =
      let meth = Cohttp.Code.string_of_method (Cohttp.Request.meth req) in
      let target = Cohttp.Request.resource req in
      (match Labctl_auth.handle auth ~meth ~target with
      | Labctl_auth.Done d -> Lwt.return d
      | Labctl_auth.Lookup (user, k) -> read users user >|= k)
      >>= fun d ->
      (* User names and outcomes only: never the password, never the query. *)
      Log.info (fun m ->
          m "auth method=%s user=%s outcome=%s status=%d"
            (Labctl_auth.log_safe meth) (Labctl_auth.log_safe d.user) d.outcome d.status);
      Http.respond_string
        ~headers:(Cohttp.Header.of_list d.headers)
        ~status:(Cohttp.Code.status_of_code d.status)
        ~body:d.body ()
    in
    Log.info (fun m -> m "listening on TCP port %d" port);
    http (`TCP port) (Http.make ~callback ())
end
