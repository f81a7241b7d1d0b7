fn main() {
    println!("frps");
}
