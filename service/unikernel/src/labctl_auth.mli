(** The authentication service's request logic, free of Mirage and Lwt:
    request line in, decision out. unikernel.ml only carries requests to it
    and its answers back; the tests run service/testdata/vectors.tsv
    against it.

    Contract (DESIGN.md, service/testdata/README.md): GET or HEAD, any
    path, [?user=U&password=P] gives 200 ["hello U!\n"] when U's stored
    PBKDF2-SHA256 credential matches P, 401 ["Invalid login\n"] otherwise,
    401 ["No user given\n"] when either is missing or empty, 400
    ["Bad request\n"] for a bad %-escape or a repeated user/password, and
    405 ["Method not allowed\n"] for any other method. *)

(** PBKDF2-HMAC-SHA256: [kdf ~password ~salt ~count ~dk_len] is the derived
    key of [dk_len] bytes. Injected because the [pbkdf] library changed its
    API (Cstruct in 1.x, which Debian ships for the tests; string in 2.x,
    which Mirage 4.9+ unikernels get). *)
type kdf = password:string -> salt:string -> count:int -> dk_len:int -> string

(** {1 Credentials} *)

type credential = { iterations : int; salt : string; key : string }

val min_iterations : int
val max_iterations : int

(** Iterations every request pays when the store is empty (labctl users
    add writes this count). *)
val default_iterations : int

val max_password_len : int

(** [parse_credential s] reads [pbkdf2-sha256$<iterations>$<salt>$<key>]
    strictly: canonical padded standard base64, iterations without sign or
    leading zero in \[min_iterations, max_iterations\], salt 8-64 and key
    16-64 bytes, at most one trailing ['\n']. The error says what was
    expected. *)
val parse_credential : string -> (credential, string) result

(** [verify ~kdf c password] runs PBKDF2 with [c]'s parameters and compares
    keys in constant time. Empty, over-long and NUL-holding passwords never
    match, but still pay the PBKDF2 run. *)
val verify : kdf:kdf -> credential -> string -> bool

(** {1 Names and encodings} *)

(** [valid_name s]: 1-64 bytes of [A-Za-z0-9._-], not starting with ['.']:
    always a plain file name inside the users store. *)
val valid_name : string -> bool

(** Standard base64 with padding, canonical encodings only. *)
val base64_decode : string -> string option

(** [unescape s] decodes one form-urlencoded component: ['+'] is a space,
    [%XX] a byte; a ['%'] without two hex digits is [None]. *)
val unescape : string -> string option

(** The query of a raw request-target: what follows the first ['?'],
    [""] when there is none (also for ["*"]). *)
val query_of_target : string -> string

type query = { user : string option; password : string option }

(** [parse_query raw] splits on ['&'] only, skips empty pairs, cuts each at
    its first ['='], decodes keys and values. Any bad escape fails the
    whole query, and so does a second [user] or [password]: no reader can
    then disagree about which value counted. *)
val parse_query : string -> (query, [ `Bad_escape | `Duplicate of string ]) result

(** {1 Requests} *)

type decision = {
  status : int;
  body : string;  (** empty for HEAD *)
  headers : (string * string) list;
  user : string;  (** the user asked for, for the log ("" when none) *)
  outcome : string;  (** ok, invalid, missing, bad_request, method_not_allowed *)
}

type t

(** [create ~kdf ~cost]: [cost] is the PBKDF2 iterations every request with
    credentials pays, the highest count in the store, so that no answer's
    duration tells which users exist or how they are stored. *)
val create : kdf:kdf -> cost:int -> t

(** [cost_of creds] is the highest iteration count, [default_iterations]
    for an empty store. *)
val cost_of : credential list -> int

type step =
  | Done of decision
  | Lookup of string * (string option -> decision)
      (** Read the stored credential of this (valid) user name from the
          store, [None] when absent, and pass it on. *)

val handle : t -> meth:string -> target:string -> step

(** [handle_sync t ~lookup] runs [handle] with a synchronous store. *)
val handle_sync :
  t -> lookup:(string -> string option) -> meth:string -> target:string -> decision

(** [log_safe s] bounds what a hostile request can put in a log line:
    64 bytes, control characters replaced. *)
val log_safe : string -> string
