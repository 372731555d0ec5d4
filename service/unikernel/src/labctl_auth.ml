(* The request logic of the authentication service; see labctl_auth.mli.
   It mirrors service/auth and service/users (Go) rule for rule: both must
   answer service/testdata/vectors.tsv identically. *)

type kdf = password:string -> salt:string -> count:int -> dk_len:int -> string

(* --- credentials *)

type credential = { iterations : int; salt : string; key : string }

let scheme = "pbkdf2-sha256"
let min_iterations = 1_000
let max_iterations = 10_000_000
let default_iterations = 600_000
let max_password_len = 1024

(* The longest valid credential: 8-digit count, 64-byte salt and key
   (88 base64 characters each), and one newline. *)
let max_credential_len = String.length scheme + 1 + 8 + 1 + 88 + 1 + 88 + 1

let b64_value = function
  | 'A' .. 'Z' as c -> Char.code c - Char.code 'A'
  | 'a' .. 'z' as c -> Char.code c - Char.code 'a' + 26
  | '0' .. '9' as c -> Char.code c - Char.code '0' + 52
  | '+' -> 62
  | '/' -> 63
  | _ -> -1

let base64_decode s =
  let n = String.length s in
  if n mod 4 <> 0 then None
  else
    let pad =
      if n > 0 && s.[n - 1] = '=' then if n > 1 && s.[n - 2] = '=' then 2 else 1
      else 0
    in
    let out = Buffer.create (n / 4 * 3) in
    let rec group g =
      if g * 4 >= n then Some (Buffer.contents out)
      else
        let last = (g + 1) * 4 = n in
        let chars = if last then 4 - pad else 4 in
        let v = Array.init chars (fun k -> b64_value s.[(g * 4) + k]) in
        if Array.exists (fun x -> x < 0) v then None
        else
          let add x = Buffer.add_char out (Char.chr (x land 0xff)) in
          match chars with
          | 4 ->
              add ((v.(0) lsl 2) lor (v.(1) lsr 4));
              add ((v.(1) lsl 4) lor (v.(2) lsr 2));
              add ((v.(2) lsl 6) lor v.(3));
              group (g + 1)
          (* Canonical only: the bits the padding hides must be zero, so
             one key has one spelling (Go's StdEncoding.Strict). *)
          | 3 when v.(2) land 0x3 = 0 ->
              add ((v.(0) lsl 2) lor (v.(1) lsr 4));
              add ((v.(1) lsl 4) lor (v.(2) lsr 2));
              Some (Buffer.contents out)
          | 2 when v.(1) land 0xf = 0 ->
              add ((v.(0) lsl 2) lor (v.(1) lsr 4));
              Some (Buffer.contents out)
          | _ -> None
    in
    group 0

let all_digits s = String.for_all (function '0' .. '9' -> true | _ -> false) s

let parse_credential s =
  let fail fmt = Printf.ksprintf (fun m -> Error ("credential: " ^ m)) fmt in
  let len = String.length s in
  if len > max_credential_len then
    fail "expected at most %d bytes, got %d" max_credential_len len
  else
    let s =
      if len > 0 && s.[len - 1] = '\n' then String.sub s 0 (len - 1) else s
    in
    if String.contains s '\n' || String.contains s '\r' then
      fail "expected no line break inside"
    else
      match String.split_on_char '$' s with
      | [ sch; it; salt; key ] -> (
          if sch <> scheme then fail "expected scheme %S, got %S" scheme sch
          else if
            it = "" || String.length it > 8 || it.[0] = '0' || not (all_digits it)
          then fail "expected iterations as a decimal without sign or leading zero, got %S" it
          else
            let n = int_of_string it in
            if n < min_iterations || n > max_iterations then
              fail "expected iterations in [%d,%d], got %d" min_iterations
                max_iterations n
            else
              match (base64_decode salt, base64_decode key) with
              | None, _ -> fail "expected the salt in canonical padded base64"
              | _, None -> fail "expected the key in canonical padded base64"
              | Some salt, _ when String.length salt < 8 || String.length salt > 64
                ->
                  fail "expected a salt of 8-64 bytes, got %d" (String.length salt)
              | _, Some key when String.length key < 16 || String.length key > 64
                ->
                  fail "expected a key of 16-64 bytes, got %d" (String.length key)
              | Some salt, Some key -> Ok { iterations = n; salt; key })
      | _ -> fail "expected pbkdf2-sha256$<iterations>$<salt>$<key>"

(* HMAC zero-pads its key, so "pw\000" would derive the key of "pw". *)
let password_ok p =
  p <> "" && String.length p <= max_password_len && not (String.contains p '\000')

let verify ~kdf c password =
  if c.key = "" || c.iterations < min_iterations || c.iterations > max_iterations
  then false
  else
    let got =
      kdf ~password ~salt:c.salt ~count:c.iterations ~dk_len:(String.length c.key)
    in
    (* Both sides run whatever the outcome: no early exit to time. *)
    let same = Eqaf.equal got c.key in
    same && password_ok password

(* --- names and encodings *)

let valid_name s =
  let n = String.length s in
  n >= 1 && n <= 64 && s.[0] <> '.'
  && String.for_all
       (function
         | 'a' .. 'z' | 'A' .. 'Z' | '0' .. '9' | '.' | '_' | '-' -> true
         | _ -> false)
       s

let hex_value = function
  | '0' .. '9' as c -> Char.code c - Char.code '0'
  | 'a' .. 'f' as c -> Char.code c - Char.code 'a' + 10
  | 'A' .. 'F' as c -> Char.code c - Char.code 'A' + 10
  | _ -> -1

let unescape s =
  let n = String.length s in
  let b = Buffer.create n in
  let rec go i =
    if i >= n then Some (Buffer.contents b)
    else
      match s.[i] with
      | '+' ->
          Buffer.add_char b ' ';
          go (i + 1)
      | '%' ->
          if i + 2 >= n then None
          else
            let h = hex_value s.[i + 1] and l = hex_value s.[i + 2] in
            if h < 0 || l < 0 then None
            else (
              Buffer.add_char b (Char.chr ((h * 16) + l));
              go (i + 3))
      | c ->
          Buffer.add_char b c;
          go (i + 1)
  in
  go 0

let query_of_target target =
  match String.index_opt target '?' with
  | None -> ""
  | Some i -> String.sub target (i + 1) (String.length target - i - 1)

type query = { user : string option; password : string option }

let parse_query raw =
  let rec go q n_user n_pass = function
    | [] ->
        if n_user > 1 then Error (`Duplicate "user")
        else if n_pass > 1 then Error (`Duplicate "password")
        else Ok q
    | "" :: rest -> go q n_user n_pass rest
    | pair :: rest -> (
        let k, v =
          match String.index_opt pair '=' with
          | Some i -> (String.sub pair 0 i, String.sub pair (i + 1) (String.length pair - i - 1))
          | None -> (pair, "")
        in
        match (unescape k, unescape v) with
        | Some "user", Some v -> go { q with user = Some v } (n_user + 1) n_pass rest
        | Some "password", Some v ->
            go { q with password = Some v } n_user (n_pass + 1) rest
        | Some _, Some _ -> go q n_user n_pass rest
        | _ -> Error `Bad_escape)
  in
  go { user = None; password = None } 0 0 (String.split_on_char '&' raw)

(* --- requests *)

type decision = {
  status : int;
  body : string;
  headers : (string * string) list;
  user : string;
  outcome : string;
}

type t = { kdf : kdf; cost : int; dummy : credential }

let clamp lo hi x = max lo (min hi x)

let create ~kdf ~cost =
  let cost = clamp min_iterations max_iterations cost in
  (* Unknown users are checked against this: same cost, a key no password
     derives in practice, and [found] is false besides. *)
  let dummy =
    { iterations = cost; salt = "labctl auth dummy salt"; key = String.make 32 '\000' }
  in
  { kdf; cost; dummy }

let cost_of creds =
  List.fold_left (fun acc c -> max acc c.iterations) 0 creds |> function
  | 0 -> default_iterations
  | n -> n

type step = Done of decision | Lookup of string * (string option -> decision)

let body_invalid = "Invalid login\n"
let body_no_user = "No user given\n"
let body_bad_request = "Bad request\n"
let body_method = "Method not allowed\n"

let headers_for status =
  let base =
    [
      ("content-type", "text/plain; charset=utf-8");
      ("x-content-type-options", "nosniff");
      ("cache-control", "no-store");
    ]
  in
  if status = 405 then base @ [ ("allow", "GET, HEAD") ] else base

let handle t ~meth ~target =
  let answer status body user outcome =
    let body = if meth = "HEAD" then "" else body in
    { status; body; headers = headers_for status; user; outcome }
  in
  if meth <> "GET" && meth <> "HEAD" then
    Done (answer 405 body_method "" "method_not_allowed")
  else
    match parse_query (query_of_target target) with
    | Error _ -> Done (answer 400 body_bad_request "" "bad_request")
    | Ok { user = None | Some ""; _ } | Ok { password = None | Some ""; _ } ->
        Done (answer 401 body_no_user "" "missing")
    | Ok { user = Some user; password = Some password } ->
        let finish stored =
          let cred, found =
            match Option.map parse_credential stored with
            | Some (Ok c) -> (c, true)
            | Some (Error _) | None -> (t.dummy, false)
          in
          let ok = verify ~kdf:t.kdf cred password && found in
          (* A user stored with fewer iterations pays the difference, so
             every credentialed request costs [t.cost] iterations. *)
          (if t.cost > cred.iterations then
             let (_ : string) =
               t.kdf ~password:"labctl-pad" ~salt:"labctl-pad-salt!"
                 ~count:(t.cost - cred.iterations) ~dk_len:32
             in
             ());
          if ok then answer 200 ("hello " ^ user ^ "!\n") user "ok"
          else answer 401 body_invalid user "invalid"
        in
        (* Invalid names never reach the store: they cannot become paths. *)
        if valid_name user then Lookup (user, finish) else Done (finish None)

let handle_sync t ~lookup ~meth ~target =
  match handle t ~meth ~target with Done d -> d | Lookup (user, k) -> k (lookup user)

let log_safe s =
  let n = String.length s in
  let shown = if n > 64 then String.sub s 0 64 else s in
  let shown =
    String.map (fun c -> if c < ' ' || c > '~' then '?' else c) shown
  in
  if n > 64 then Printf.sprintf "%s...(%d bytes)" shown n else shown
