fn main() {
    println!("frpc");
}
