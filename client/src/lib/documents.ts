// Every document the client sends. `npm run codegen` reads these `graphql(...)` calls
// and generates their result and variable types (src/gql/), each document's SHA-256 in
// `document.__meta__.hash`, and the manifest of them all (src/gql/persisted-documents.json).
import { graphql } from "../gql/index.js";

export const Login = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      ... on TokenSuccess { token user { id username } }
      ... on Error { code message }
    }
  }
`);

export const PostVersion = graphql(`
  fragment PostVersion on Post { id title version updatedAt }
`);

export const ListPosts = graphql(`
  query ListPosts($first: Int!) {
    posts(first: $first) {
      totalCount
      edges { node { id title status createdAt createdBy { username } tags { name color } } }
    }
  }
`);

export const CreatePost = graphql(`
  mutation CreatePost($input: CreatePostInput!) {
    createPost(input: $input) {
      ... on PostSuccess { post { ...PostVersion createdAt } }
      ... on Error { code message }
    }
  }
`);

export const UpdatePost = graphql(`
  mutation UpdatePost($input: UpdatePostInput!) {
    updatePost(input: $input) {
      ... on PostSuccess { post { ...PostVersion } }
      ... on ConflictError { currentVersion }
      ... on Error { code message }
    }
  }
`);

export const PublishPost = graphql(`
  mutation PublishPost($input: PostVersionInput!) {
    publishPost(input: $input) {
      ... on PostSuccess { post { id status version publishedAt } }
      ... on Error { code message }
    }
  }
`);

export const PostHistory = graphql(`
  query PostHistory($id: ID!, $first: Int!) {
    post(id: $id) {
      id
      title
      history(first: $first) {
        totalCount
        edges { node { action at actor { username } changes { field old new } } }
      }
    }
  }
`);

export const Post = graphql(`
  query Post($id: ID!) {
    post(id: $id) { ...PostVersion }
  }
`);

export const NodeVersion = graphql(`
  query NodeVersion($id: ID!) {
    node(id: $id) {
      id
      ... on Audited { version updatedAt }
    }
  }
`);

export const Viewer = graphql(`
  query Viewer {
    viewer { id username }
  }
`);

export const CreateComment = graphql(`
  mutation CreateComment($input: CreateCommentInput!) {
    createComment(input: $input) {
      ... on CommentSuccess { comment { id body } }
      ... on Error { code message }
    }
  }
`);

export const CommentAdded = graphql(`
  subscription CommentAdded($postId: ID!, $after: String) {
    commentAdded(postId: $postId, after: $after) { cursor comment { id body createdBy { username } } }
  }
`);
